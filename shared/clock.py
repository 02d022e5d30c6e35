"""The one clock. Every piece of code that needs "now" asks a ``Clock``; nothing else reads
the wall clock for business time (due dates, quiet hours, rate limits, deadlines, codes).

- ``SystemClock``: the wall clock, optionally shifted by a fixed offset. The offset lets a
  whole platform (every service and simulator process, and the test or demo driving them) run
  at another instant while time still flows: ``LGSP_CLOCK_AT=2026-12-31T23:59:00+07:00`` makes
  the platform start one minute before the new year.
- ``FixedClock``: stands still until told to move; for tests that fix time for everything
  they touch.

How the offset reaches every process: the entry point that starts the others (``lgsp`` and the
test session) calls ``pin_offset_from_env`` once, which turns ``LGSP_CLOCK_AT`` into
``LGSP_CLOCK_OFFSET_S`` in its environment; child processes inherit that offset, so they all
agree to the second instead of each starting its own clock at its own start-up time.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Protocol

CLOCK_AT = "LGSP_CLOCK_AT"
CLOCK_OFFSET = "LGSP_CLOCK_OFFSET_S"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def __repr__(self) -> str:
        return f"SystemClock(offset={self.offset.total_seconds():+.0f}s)"


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = _aware(at, "FixedClock")

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = _aware(at, "FixedClock.set")

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


class ClockSettingError(ValueError):
    """LGSP_CLOCK_AT or LGSP_CLOCK_OFFSET_S is not usable; the message names the variable."""


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None:
        raise ClockSettingError(f"{what} needs a time with a zone, e.g. 2026-12-31T23:59:00+07:00")
    return at.astimezone(timezone.utc)


def parse_instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ClockSettingError(f"{CLOCK_AT}={text!r} is not an ISO 8601 time, e.g. 2026-12-31T23:59:00+07:00") from exc
    return _aware(at, CLOCK_AT)


def pin_offset_from_env(environ: os._Environ | dict = os.environ) -> timedelta:
    """Turn ``LGSP_CLOCK_AT`` into ``LGSP_CLOCK_OFFSET_S`` (once, kept for child processes)
    and return the offset. Without either variable the offset is zero: the real clock."""
    if environ.get(CLOCK_OFFSET):
        return offset_from_env(environ)
    if environ.get(CLOCK_AT):
        offset = parse_instant(environ[CLOCK_AT]) - datetime.now(timezone.utc)
        environ[CLOCK_OFFSET] = f"{offset.total_seconds():.6f}"
        return offset
    return timedelta(0)


def offset_from_env(environ: os._Environ | dict = os.environ) -> timedelta:
    raw = environ.get(CLOCK_OFFSET, "") or "0"
    try:
        return timedelta(seconds=float(raw))
    except (ValueError, OverflowError) as exc:
        raise ClockSettingError(f"{CLOCK_OFFSET}={raw!r} is not a number of seconds") from exc


def clock_from_env(environ: os._Environ | dict = os.environ) -> SystemClock:
    """The platform's clock as this process's environment sets it."""
    return SystemClock(pin_offset_from_env(environ))
