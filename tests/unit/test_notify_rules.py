"""When a citizen's message may go (services/notify/rules.py), in memory at fixed instants."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.notify.rules import MAX_ATTEMPTS, after_refusal, held_until, quiet_until

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NIGHT = "21:00-07:00"


def test_quiet_hours_across_midnight_end_in_the_morning_in_vietnam_s_time():
    assert quiet_until(datetime(2027, 1, 3, 22, 30, tzinfo=VN), NIGHT) == datetime(2027, 1, 4, 7, 0, tzinfo=VN)
    assert quiet_until(datetime(2027, 1, 4, 6, 59, tzinfo=VN), NIGHT) == datetime(2027, 1, 4, 7, 0, tzinfo=VN)
    assert quiet_until(datetime(2027, 1, 4, 7, 0, tzinfo=VN), NIGHT) is None
    assert quiet_until(datetime(2027, 1, 4, 20, 59, tzinfo=VN), NIGHT) is None
    # the same instant given in UTC: the window is Vietnam's
    assert quiet_until(datetime(2027, 1, 3, 23, 59, tzinfo=ZoneInfo("UTC")), NIGHT) == datetime(
        2027, 1, 4, 7, 0, tzinfo=VN
    )
    assert quiet_until(datetime(2027, 1, 4, 3, 0, tzinfo=VN), "00:00-00:00") is None  # equal ends: never quiet
    assert quiet_until(datetime(2027, 1, 4, 12, 30, tzinfo=VN), "12:00-13:00") == datetime(2027, 1, 4, 13, 0, tzinfo=VN)


def test_an_urgent_message_goes_at_night_and_past_the_limit():
    night = datetime(2027, 1, 3, 23, 0, tzinfo=VN)
    full = [night - timedelta(minutes=m) for m in range(5)]
    assert held_until(night, urgent=True, quiet_hours=NIGHT, recent=full, limit_per_hour=3) is None


def test_the_hourly_limit_frees_a_slot_when_the_limit_th_newest_leaves_the_hour_and_counts_the_batch():
    noon = datetime(2027, 1, 4, 12, 0, tzinfo=VN)
    recent: list[datetime] = []
    go = [held_until(noon, urgent=False, quiet_hours=NIGHT, recent=recent, limit_per_hour=3) for _ in range(5)]
    assert go[:3] == [None, None, None]
    assert go[3] == go[4] == noon + timedelta(hours=1)  # the three just let go count
    earlier = [noon - timedelta(minutes=10), noon - timedelta(minutes=40), noon - timedelta(minutes=50)]
    assert held_until(noon, urgent=False, quiet_hours=NIGHT, recent=earlier, limit_per_hour=3) == noon + timedelta(
        minutes=10
    )
    # a recipient with no hash (rows from before it) has no limit
    assert held_until(noon, urgent=False, quiet_hours=NIGHT, recent=None, limit_per_hour=1) is None


def test_quiet_hours_hold_before_the_limit_is_counted():
    night = datetime(2027, 1, 3, 22, 0, tzinfo=VN)
    recent: list[datetime] = []
    assert held_until(night, urgent=False, quiet_hours=NIGHT, recent=recent, limit_per_hour=3) == datetime(
        2027, 1, 4, 7, 0, tzinfo=VN
    )
    assert recent == []  # a held message takes no slot


def test_a_refused_channel_waits_longer_each_time_then_hands_over():
    now = datetime(2027, 1, 4, 9, 0, tzinfo=VN)
    waits = [after_refusal(a, now) for a in range(1, MAX_ATTEMPTS)]
    assert [w - now for w in waits if w] == [timedelta(seconds=1), timedelta(seconds=2)][: MAX_ATTEMPTS - 1]
    assert after_refusal(MAX_ATTEMPTS, now) is None
