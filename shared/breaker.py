"""A circuit breaker for a party we call that may fail for a while (the national population
database): after ``failures`` calls in a row fail, calls are not tried for ``open_s`` seconds
(the party is not hammered, and callers do not each wait for a timeout); then one call is let
through as a probe, and its outcome closes the circuit again or reopens it. Pure: the time is
passed in (monotonic seconds), so the rule is tested in memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CircuitBreaker:
    failures: int = 5
    open_s: float = 30.0
    failed_in_a_row: int = 0
    opened_at: float | None = None
    probing: bool = False
    trips: int = 0  # how many times it has opened, for the operations page

    def state(self, now: float) -> str:
        """closed (calls go through), open (refused without trying), half_open (one probe)."""
        if self.opened_at is None:
            return "closed"
        return "half_open" if now - self.opened_at >= self.open_s else "open"

    def allow(self, now: float) -> bool:
        """Whether a call may be tried now; in half-open, only the first caller probes."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.failed_in_a_row, self.opened_at, self.probing = 0, None, False

    def failed(self, now: float) -> None:
        self.failed_in_a_row += 1
        if self.probing or (self.opened_at is None and self.failed_in_a_row >= self.failures):
            self.trips += self.opened_at is None
            self.opened_at, self.probing = now, False

    def describe(self, now: float) -> dict:
        return {
            "state": self.state(now),
            "failed_in_a_row": self.failed_in_a_row,
            "trips": self.trips,
            "retry_in_s": None if self.opened_at is None else max(0.0, round(self.opened_at + self.open_s - now, 1)),
        }
