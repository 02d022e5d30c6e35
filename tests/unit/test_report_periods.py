"""Report periods as the reporting regime closes them (Decree 09/2019/NĐ-CP): from the 15th of
the month before to the 14th, in Vietnam time. Pure: no clock, no stack."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake.report import PERIOD_PATTERN, regime_period

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def d(y: int, m: int, day: int) -> datetime:
    return datetime(y, m, day, tzinfo=VN)


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("2026-11", d(2026, 10, 15), d(2026, 11, 15)),  # the 14th of November is its last day
        ("2027-01", d(2026, 12, 15), d(2027, 1, 15)),  # January's starts in the year before
        ("2026-12", d(2026, 11, 15), d(2026, 12, 15)),
        ("2027-Q1", d(2026, 12, 15), d(2027, 3, 15)),
        ("2026-Q4", d(2026, 9, 15), d(2026, 12, 15)),
        ("2026", d(2025, 12, 15), d(2026, 12, 15)),
    ],
)
def test_a_period_runs_from_the_15th_of_the_month_before_to_the_14th(text, start, end):
    assert re.match(PERIOD_PATTERN, text)
    assert regime_period(text) == (start, end)


# "0000" reached the server once (a fuzzer's find): year 0 has no December before it
@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-Q5", "26-11", "2026-1", "2026-11-01", "năm 2026", "0000", "0001-01", "1999"]
)
def test_anything_else_is_not_a_period(text):
    assert not re.match(PERIOD_PATTERN, text)


def test_the_months_of_a_year_tile_it_without_gap_or_overlap():
    months = [regime_period(f"2027-{m:02d}") for m in range(1, 13)]
    assert all(a[1] == b[0] for a, b in zip(months, months[1:]))
    assert (months[0][0], months[-1][1]) == regime_period("2027")
