"""Citizens' messages through the real SMS/Zalo/e-mail simulators: Vietnamese text intact,
fallback to another channel, exactly once across a notify crash, quiet hours, rate limits."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from conftest import RUN_ID
from services.notify import handlers
from services.notify.app import MIGRATIONS
from services.notify.providers import providers
from shared.clock import FixedClock
from shared.db import create_pool, migrate
from shared.events import Applicant, DossierReceived, Envelope
from tests.helpers import APPLICANT, eventually, platform_http, submission

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_n = itertools.count()


async def delivered(http, platform, needle: str) -> list[dict]:
    msgs = (await http.get(f"{platform['messaging'].url}/control/messages")).json()["delivered"]
    return [m for m in msgs if needle in m["text"] or needle in m.get("subject", "")]


async def test_receipt_message_in_vietnamese_on_the_first_channel(platform):
    async with platform_http(timeout=15) as http:
        r = await http.post(
            f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", notify_via=["email", "sms"])
        )
        d = r.json()
        [mail] = await eventually(lambda: delivered(http, platform, d["code"]), what="the receipt e-mail")
    assert mail["channel"] == "email" and mail["to"] == APPLICANT["email"]
    assert mail["subject"] == "[Dịch vụ công] Đã tiếp nhận hồ sơ"
    assert "Kính gửi ông/bà Nguyễn Thị Hồng Nhung" in mail["text"] and "Đăng ký khai sinh" in mail["text"]


async def test_failing_provider_falls_back_to_the_next_channel(platform):
    async with platform_http(timeout=15) as http:
        await http.post(f"{platform['messaging'].url}/control", json={"down": ["sms"]})
        try:
            r = await http.post(
                f"{platform['intake'].url}/v1/dossiers", json=submission("1.000656", notify_via=["sms", "zalo"])
            )
            code = r.json()["code"]
            [msg] = await eventually(lambda: delivered(http, platform, code), what="the fallback message")
            assert msg["channel"] == "zalo" and msg["text"].startswith("Kính gửi ông/bà")
            rows = (await http.get(f"{platform['notify'].url}/v1/dossiers/{code}/notifications")).json()
            assert [(n["channel"], n["status"]) for n in rows] == [("sms", "failed"), ("zalo", "sent")]
            assert all("0912345678" not in n["address"] for n in rows)  # masked for operators
        finally:
            await http.post(f"{platform['messaging'].url}/control", json={"down": []})


async def test_exactly_once_across_a_notify_crash(platform):
    notify = platform["notify"]
    async with platform_http(timeout=15) as http:
        codes = []
        for i in range(12):
            r = await http.post(
                f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", notify_via=["sms"])
            )
            codes.append(r.json()["code"])
            if i == 4:
                notify.kill()  # SIGKILL mid-stream
        notify.start()

        async def all_there():
            found = [await delivered(http, platform, c) for c in codes]
            return found if all(found) else None

        found = await eventually(all_there, timeout=60, what="every receipt message after the restart")
        await asyncio.sleep(2)  # anything redelivered would have been sent by now
        found = [await delivered(http, platform, c) for c in codes]
    assert [len(f) for f in found] == [1] * len(codes)


@pytest.fixture
async def notify_db(settings_for):
    settings = settings_for("notify", schema_prefix=f"t{RUN_ID}_n{next(_n)}_")
    pool = await create_pool(settings.database_url, settings.schema)
    await migrate(pool, settings.schema, MIGRATIONS)
    yield settings, pool
    await pool.close()


async def plan_receipt(pool, settings, now: datetime, phone="0901234567"):
    event = DossierReceived(
        dossier_id=uuid.uuid4(),
        dossier_code=f"000.21.12.H40-{now.astimezone(VN):%y%m%d}-{next(_n):04d}",
        at=now,
        procedure_code="1.001193",
        procedure_name="Đăng ký khai sinh",
        agency_code="000.21.12.H40",
        channel="online",
        applicant=Applicant(full_name="Bùi Thị Mơ", id_number="036190000999", phone=phone, address="Xã Cúc Phương"),
        result_delivery="counter",
        due_at=now + timedelta(days=3),
        notify_via=("sms",),
    )
    env = Envelope.new(event, "/lgsp/intake")
    async with pool.acquire() as conn, conn.transaction():
        await handlers.plan_notifications([(event, env)], conn, settings=settings, now=now)
        await handlers.plan_notifications(
            [(event, env)], conn, settings=settings, now=now
        )  # redelivered: still one row
    return event, env


# Every instant below is fixed: the messages are planned and sent on the same made-up evening,
# whatever day the suite runs.
EVENING = datetime(2026, 11, 23, 22, 10, tzinfo=VN)


async def test_quiet_hours_defer_until_morning_unless_urgent(notify_db, platform):
    settings, pool = notify_db
    settings = settings.model_copy(update={"quiet_hours": "21:00-07:00", "sms_url": platform["messaging"].url})
    await plan_receipt(pool, settings, EVENING)
    night = EVENING + timedelta(minutes=20)
    async with platform_http(timeout=10) as http:
        senders = providers(http, settings)
        assert (await handlers.send_due(pool, senders, settings, FixedClock(night)))["deferred"] == 1
        row = await pool.fetchrow("SELECT status, not_before FROM notifications")
        assert row["status"] == "pending" and row["not_before"].astimezone(VN) == datetime(
            2026, 11, 24, 7, 0, tzinfo=VN
        )
        one_minute_early = datetime(2026, 11, 24, 6, 59, tzinfo=VN)
        assert (await handlers.send_due(pool, senders, settings, FixedClock(one_minute_early))) == {
            "sent": 0,
            "deferred": 0,
            "retry": 0,
            "failed": 0,
        }
        assert (await handlers.send_due(pool, senders, settings, FixedClock(datetime(2026, 11, 24, 7, 0, tzinfo=VN))))[
            "sent"
        ] == 1

        urgent = settings.model_copy(update={"urgent_events": "vn.lgsp.dossier.received.v1"})
        await plan_receipt(pool, urgent, EVENING)
        assert (await handlers.send_due(pool, senders, urgent, FixedClock(night)))["sent"] == 1
    assert await pool.fetchval("SELECT count(*) FROM notifications") == 2


async def test_no_message_is_locked_while_its_provider_is_called(notify_db, platform):
    """Claim, commit, call, record: while a slow SMS gateway answers, the message's row is not
    locked (another transaction takes it at once); the answer is recorded after, once."""
    settings, pool = notify_db
    settings = settings.model_copy(update={"quiet_hours": "00:00-00:00", "sms_url": platform["messaging"].url})
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=VN)
    event, _ = await plan_receipt(pool, settings, noon, phone="0977000222")
    async with platform_http(timeout=20) as http:
        await http.post(f"{platform['messaging'].url}/control", json={"delay_s": 2})
        try:
            sending = asyncio.create_task(
                handlers.send_due(pool, providers(http, settings), settings, FixedClock(noon))
            )
            # probe once the claim is done (it takes milliseconds): a probe holding the row as
            # send_due claims would make it skip the row
            await asyncio.sleep(0.3)
            locked_out = looked = 0
            while not sending.done():
                async with pool.acquire() as conn, conn.transaction():
                    try:
                        await conn.fetchval("SELECT status FROM notifications FOR UPDATE NOWAIT")
                    except asyncpg.LockNotAvailableError:
                        locked_out += 1
                looked += 1
                await asyncio.sleep(0.1)
            counts = await sending
        finally:
            await http.post(f"{platform['messaging'].url}/control", json={})
    assert counts["sent"] == 1 and looked >= 10, (counts, looked)  # the call took its two seconds, watched
    assert locked_out == 0
    row = await pool.fetchrow("SELECT status, attempts FROM notifications")
    assert (row["status"], row["attempts"]) == ("sent", 1)


async def test_rate_limit_per_recipient(notify_db, platform):
    settings, pool = notify_db
    settings = settings.model_copy(
        update={"quiet_hours": "00:00-00:00", "rate_limit_per_hour": 3, "sms_url": platform["messaging"].url}
    )
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=VN)
    for _ in range(5):
        await plan_receipt(pool, settings, noon, phone="0977000111")
    async with platform_http(timeout=10) as http:
        senders = providers(http, settings)
        counts = await handlers.send_due(pool, senders, settings, FixedClock(noon))
        assert counts["sent"] == 3 and counts["deferred"] == 2
        # the first of the three leaves the hour's window at 13:00: the held-back ones go then
        assert (await handlers.send_due(pool, senders, settings, FixedClock(noon + timedelta(minutes=59))))["sent"] == 0
        assert (await handlers.send_due(pool, senders, settings, FixedClock(noon + timedelta(hours=1, seconds=1))))[
            "sent"
        ] == 2
