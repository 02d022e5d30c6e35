"""The circuit breaker's rule, in memory with time passed in."""

from __future__ import annotations

from shared.breaker import CircuitBreaker


def test_it_opens_after_failures_in_a_row_and_refuses_without_trying():
    b = CircuitBreaker(failures=3, open_s=30)
    for t in range(2):
        assert b.allow(t)
        b.failed(t)
    b.succeeded()  # a success in between starts the count again
    for t in range(3):
        assert b.allow(10 + t)
        b.failed(10 + t)
    assert b.state(12) == "open" and not b.allow(20) and b.trips == 1
    assert b.describe(20)["retry_in_s"] == 22.0


def test_after_the_wait_one_probe_goes_and_its_outcome_decides():
    b = CircuitBreaker(failures=1, open_s=30)
    b.failed(0)
    assert b.state(30) == "half_open"
    assert b.allow(30) and not b.allow(30.1)  # one probe at a time
    b.failed(31)  # the probe failed: open again, for another 30 s
    assert b.state(40) == "open" and b.state(61) == "half_open" and b.trips == 1
    assert b.allow(61)
    b.succeeded()
    assert b.state(61) == "closed" and b.allow(61) and b.allow(61)
