"""Intake's use cases at fixed awkward instants (time is fixed for everything the test
touches): the daily code sequence and the calendar roll over at midnight on 31 December,
receipt before Tết counts past the holidays, and a year without a calendar file is an error."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake import handlers
from services.intake.app import MIGRATIONS
from services.intake.schemas import SubmitDossier
from shared.outbox import Outbox
from shared.reference import load_reference
from shared.reference.calendar import CalendarNotCovered
from tests.helpers import submission

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
AGENCY = "000.21.12.H40"


@pytest.fixture
async def intake(service_db):
    settings, pool = await service_db("intake", MIGRATIONS)
    return pool, Outbox(settings), settings


async def submit(intake, now: datetime, **extra):
    pool, outbox, settings = intake
    cmd = SubmitDossier.model_validate(submission("1.001193", agency_code=AGENCY, channel="counter", **extra))
    outcome, _ = await handlers.submit_dossier(
        cmd, pool=pool, outbox=outbox, ref=REF, settings=settings, idempotency_key=None, now=now
    )
    return outcome


async def test_codes_and_due_dates_roll_over_at_the_new_year(intake):
    last = [await submit(intake, datetime(2026, 12, 31, 23, 59, 58, tzinfo=VN)) for _ in range(2)]
    first = [await submit(intake, datetime(2027, 1, 1, 0, 0, 1, tzinfo=VN)) for _ in range(2)]
    assert [d.code for d in last] == [f"{AGENCY}-261231-0001", f"{AGENCY}-261231-0002"]
    assert [d.code for d in first] == [f"{AGENCY}-270101-0001", f"{AGENCY}-270101-0002"]
    # one working day, counted from the next working day: 1 January is a holiday, then a weekend
    assert {d.due_at.astimezone(VN) for d in last + first} == {datetime(2027, 1, 4, 17, 0, tzinfo=VN)}


async def test_received_on_the_last_working_day_before_tet(intake):
    d = await submit(intake, datetime(2027, 2, 3, 16, 59, tzinfo=VN))
    assert d.code == f"{AGENCY}-270203-0001"
    assert d.due_at.astimezone(VN) == datetime(2027, 2, 11, 17, 0, tzinfo=VN)  # after the Tết holidays


async def test_a_year_without_a_calendar_is_an_error_not_a_guess(intake):
    with pytest.raises(CalendarNotCovered, match="2028"):
        await submit(intake, datetime(2028, 1, 3, 9, 0, tzinfo=VN))
    pool = intake[0]
    assert await pool.fetchval("SELECT count(*) FROM dossiers") == 0  # nothing half-recorded
