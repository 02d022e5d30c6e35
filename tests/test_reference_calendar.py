"""Working days and due dates around weekends, Lunar New Year and make-up Saturdays."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.reference.calendar import CalendarNotCovered, WorkingCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
cal = WorkingCalendar.load()


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN)


def local(dt: datetime) -> datetime:
    return dt.astimezone(VN)


def test_weekends_holidays_and_makeup_days():
    assert cal.is_working_day(date(2025, 1, 24))  # Friday before Tết
    assert not cal.is_working_day(date(2025, 1, 25))  # Saturday
    assert not cal.is_working_day(date(2025, 1, 29))  # mùng 1 Tết Ất Tỵ
    assert cal.is_working_day(date(2025, 4, 26))  # make-up Saturday
    assert not cal.is_working_day(date(2025, 5, 2))  # swapped day off
    assert not cal.is_working_day(date(2026, 2, 17))  # mùng 1 Tết Bính Ngọ
    assert not cal.is_working_day(date(2027, 4, 16))  # Giỗ Tổ Hùng Vương 2027


def test_counting_starts_the_working_day_after_receipt_and_ends_at_17h():
    # received Monday 10:00 with 1 day: due Tuesday 17:00
    assert local(cal.due_at(vn(2025, 3, 3, 10, 0), 1)) == vn(2025, 3, 4, 17, 0)
    # received Friday: the weekend does not count
    assert local(cal.due_at(vn(2025, 3, 7, 16, 0), 1)) == vn(2025, 3, 10, 17, 0)
    # received on a Sunday evening: Monday is the first day
    assert local(cal.due_at(vn(2025, 3, 9, 20, 0), 2)) == vn(2025, 3, 11, 17, 0)


def test_half_days_end_at_noon():
    assert local(cal.due_at(vn(2025, 3, 3, 9, 0), 0.5)) == vn(2025, 3, 4, 12, 0)
    assert local(cal.due_at(vn(2025, 3, 3, 9, 0), 2.5)) == vn(2025, 3, 6, 12, 0)
    with pytest.raises(ValueError):
        cal.due_at(vn(2025, 3, 3, 9, 0), 0.3)


def test_lunar_new_year_is_skipped():
    # received Friday 24 Jan 2025, 3 days: Tết runs 27-31 Jan, so 3, 4, 5 Feb; due 5 Feb 17:00
    assert local(cal.due_at(vn(2025, 1, 24, 15, 0), 3)) == vn(2025, 2, 5, 17, 0)
    # 2026: received Friday 13 Feb, 1 day: 16-20 Feb are Tết, due Monday 23 Feb
    assert local(cal.due_at(vn(2026, 2, 13, 8, 30), 1)) == vn(2026, 2, 23, 17, 0)


def test_makeup_saturday_counts():
    # received Friday 25 Apr 2025, 1 day: Saturday 26 Apr is a make-up working day
    assert local(cal.due_at(vn(2025, 4, 25, 14, 0), 1)) == vn(2025, 4, 26, 17, 0)
    # ...and 30 Apr - 2 May are off: received 29 Apr, 1 day -> Monday 5 May
    assert local(cal.due_at(vn(2025, 4, 29, 14, 0), 1)) == vn(2025, 5, 5, 17, 0)


def test_remaining_time_survives_a_pause():
    due = cal.due_at(vn(2025, 3, 3, 9, 0), 3)  # Thursday 6 Mar 17:00
    paused = vn(2025, 3, 4, 10, 0)  # Tuesday 10:00: Tue 6h + Wed 8h + Thu 8h left
    remaining = cal.working_minutes_between(paused, due)
    assert remaining == (2 * 60 + 4 * 60) + 8 * 60 + 8 * 60
    resumed = vn(2025, 3, 10, 13, 0)  # Monday 13:00: Mon 4h, Tue 8h, Wed 8h, then 2h on Thursday
    assert local(cal.add_working_minutes(resumed, remaining)) == vn(2025, 3, 13, 10, 0)


def test_a_year_without_a_calendar_is_an_error_not_a_guess():
    with pytest.raises(CalendarNotCovered, match="2031"):
        cal.due_at(vn(2031, 3, 3, 9, 0), 1)
    with pytest.raises(CalendarNotCovered, match="2024"):
        cal.is_working_day(date(2024, 12, 31))


def test_utc_input_is_read_in_vietnam_time():
    # 18:00 UTC Sunday = 01:00 Monday in Hà Nội: counting starts Tuesday
    assert local(cal.due_at(datetime(2025, 3, 9, 18, 0, tzinfo=timezone.utc), 1)) == vn(2025, 3, 11, 17, 0)
