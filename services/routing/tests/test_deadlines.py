"""The deadline scheduler against the real database, at chosen moments: what it claims and
saves, exactly once per due date even when schedulers run at the same time. The rules
themselves (when a warning or an apology is owed) are tested in memory, in
tests/unit/test_routing_dossier.py."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.routing import handlers
from services.routing.app import MIGRATIONS
from services.routing.schemas import AcceptStep, ForwardStep, Resolve
from shared.events import Actor, Applicant, DossierReceived
from shared.outbox import Outbox
from shared.reference import load_reference
from tests.helpers import RESULT

ACTOR = Actor(name="Vũ Văn Nam", title="Công chức", account="official-000.21.12.h40")

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
_n = itertools.count()


@pytest.fixture
async def db(service_db):
    settings, pool = await service_db("routing", MIGRATIONS)
    return pool, Outbox(settings)


async def receive(pool, outbox, received_at: datetime, procedure: str = "1.000894") -> DossierReceived:
    p = REF.catalogue.procedures[procedure]
    event = DossierReceived(
        dossier_id=uuid.uuid4(),
        dossier_code=f"000.21.12.H40-{received_at:%y%m%d}-{next(_n):04d}",
        at=received_at,
        procedure_code=p.code,
        procedure_name=p.name,
        agency_code="000.21.12.H40",
        channel="counter",
        applicant=Applicant(
            full_name="Đinh Thị Lan", id_number="037185000111", phone="0912000111", address="Xóm Đồng, xã Ninh Hải"
        ),
        result_delivery="counter",
        due_at=REF.calendar.due_at(received_at, p.time_limit_days),
    )
    async with pool.acquire() as conn, conn.transaction():
        await handlers.start_workflow(event, conn, outbox=outbox, ref=REF, now=received_at)
    return event


async def emitted(pool, dossier_id, event: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE key = $1 AND headers @> $2::jsonb",
        str(dossier_id).encode(),
        f'[["ce_type", "vn.lgsp.dossier.{event}.v1"]]',
    )


async def scan(pool, outbox, now):
    return await handlers.scan_deadlines(pool, outbox, REF, extension_days=2, now=now)


async def test_at_risk_then_overdue_then_apology_once_per_due_date(db):
    pool, outbox = db
    d = await receive(pool, outbox, datetime(2026, 3, 2, 9, 0, tzinfo=VN))  # 3 days: due Thu 5 Mar 17:00
    assert d.due_at.astimezone(VN) == datetime(2026, 3, 5, 17, 0, tzinfo=VN)

    assert (await scan(pool, outbox, datetime(2026, 3, 3, 9, 0, tzinfo=VN)))["at_risk"] == 0  # 2.5 days left
    assert (await scan(pool, outbox, datetime(2026, 3, 5, 10, 0, tzinfo=VN)))["at_risk"] == 1  # 7 hours left
    assert (await scan(pool, outbox, datetime(2026, 3, 5, 11, 0, tzinfo=VN)))["at_risk"] == 0  # warned already

    counts = await scan(pool, outbox, datetime(2026, 3, 6, 9, 0, tzinfo=VN))
    assert counts["overdue"] == 1
    assert (await scan(pool, outbox, datetime(2026, 3, 6, 9, 30, tzinfo=VN)))["overdue"] == 0
    row = await pool.fetchrow("SELECT due_at, apologies FROM dossiers WHERE dossier_id = $1", d.dossier_id)
    # the apology's new appointment: two working days after the day it was sent
    assert row["due_at"].astimezone(VN) == datetime(2026, 3, 10, 17, 0, tzinfo=VN)
    assert row["apologies"] == 1
    assert await emitted(pool, d.dossier_id, "apologised") == 1
    assert await emitted(pool, d.dossier_id, "step_overdue") == 1  # the first step's deadline passed too

    # the new date passes as well: a second apology, for the new date
    assert (await scan(pool, outbox, datetime(2026, 3, 11, 9, 0, tzinfo=VN)))["overdue"] == 1
    assert await emitted(pool, d.dossier_id, "apologised") == 2


async def test_two_schedulers_at_once_send_one_apology(db):
    pool, outbox = db
    dossiers = [await receive(pool, outbox, datetime(2026, 3, 2, 9, 0, tzinfo=VN)) for _ in range(20)]
    late = datetime(2026, 3, 9, 9, 0, tzinfo=VN)
    results = await asyncio.gather(*[scan(pool, outbox, late) for _ in range(4)])
    assert sum(r["overdue"] for r in results) == 20
    for d in dossiers:
        assert await emitted(pool, d.dossier_id, "apologised") == 1


async def act(code: str, cmd, *, conn, outbox, now, extension_days: float = 2) -> None:
    """An agency's action, as routing's HTTP route runs it."""
    await handlers.act(conn, code, cmd, outbox=outbox, ref=REF, now=now, actor=ACTOR, extension_days=extension_days)


async def decide(pool, outbox, d: DossierReceived, now: datetime) -> None:
    """Every agency on the route accepts and forwards at ``now``, and the last one approves."""
    async with pool.acquire() as conn, conn.transaction():
        while True:
            step = await conn.fetchrow(
                "SELECT s.* FROM steps s JOIN dossiers d USING (dossier_id) "
                "WHERE d.dossier_id = $1 AND s.idx = d.current_step",
                d.dossier_id,
            )
            cmd = {"agency_code": step["agency_code"]}
            await act(d.dossier_code, AcceptStep(**cmd), conn=conn, outbox=outbox, now=now)
            if step["kind"] == "decide":
                break
            await act(d.dossier_code, ForwardStep(**cmd), conn=conn, outbox=outbox, now=now)
        await act(
            d.dossier_code,
            Resolve(**cmd, outcome="approved", result_document=RESULT),
            conn=conn,
            outbox=outbox,
            extension_days=2,
            now=now,
        )


async def test_decided_late_before_the_scheduler_looked_still_apologises_once(db):
    pool, outbox = db
    d = await receive(pool, outbox, datetime(2026, 3, 2, 9, 0, tzinfo=VN))  # due Thu 5 Mar 17:00
    late = datetime(2026, 3, 9, 10, 0, tzinfo=VN)
    await decide(pool, outbox, d, late)
    assert await emitted(pool, d.dossier_id, "apologised") == 1
    assert await emitted(pool, d.dossier_id, "resolved") == 1
    assert (await scan(pool, outbox, late))["overdue"] == 0  # resolved: nothing more to apologise for
    assert await emitted(pool, d.dossier_id, "apologised") == 1
