"""When a citizen's message may go, with no I/O: quiet hours, the hourly limit per recipient,
and what follows a provider's refusal. ``send_due`` (handlers.py) reads the rows, asks these,
and records the answers; the rules are tested in memory (tests/unit/test_notify_rules.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from shared.reference.calendar import LOCAL_TZ

MAX_ATTEMPTS = 3  # a channel tried this often without success hands over to the next one


def quiet_window(quiet_hours: str) -> tuple[time, time]:
    """``"21:00-07:00"`` as (start, end); equal ends mean no quiet hours."""
    start, end = quiet_hours.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_until(now: datetime, quiet_hours: str) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (Vietnam's time), or None outside them."""
    start, end = quiet_window(quiet_hours)
    local = now.astimezone(LOCAL_TZ)
    t = local.time()
    in_quiet = (t >= start or t < end) if start > end else (start <= t < end)
    if not in_quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, LOCAL_TZ)


def held_until(
    now: datetime, *, urgent: bool, quiet_hours: str, recent: list[datetime] | None, limit_per_hour: int
) -> datetime | None:
    """When a message may go, or None for now. An urgent one is never held. Otherwise quiet
    hours hold it until they end; then the recipient's hourly limit: ``recent`` are the times
    of the recipient's latest messages within the hour, newest first (None: a recipient with
    no limit), and a slot frees when the limit-th newest leaves the hour. A message let go is
    counted in ``recent`` at once, so the next of the same batch sees it."""
    if urgent:
        return None
    if (later := quiet_until(now, quiet_hours)) is not None:
        return later
    if recent is None:
        return None
    if len(recent) >= limit_per_hour:
        return recent[limit_per_hour - 1] + timedelta(hours=1)
    recent.insert(0, now)
    return None


def after_refusal(attempts: int, now: datetime) -> datetime | None:
    """A provider refused the ``attempts``-th try: when to try the channel again (the wait
    doubles from one second), or None when the channel has had its tries."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + timedelta(seconds=0.5 * 2**attempts)
