"""Copies nobody opened by their viewing deadline are flagged once, with an event, and an
agency's incoming list puts them forward; times fixed for everything the test touches."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.documents import handlers
from services.documents.app import MIGRATIONS
from shared.outbox import Outbox

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ARRIVED = datetime(2026, 11, 24, 8, 0, tzinfo=VN)
DISTRICT, PROVINCE = "000.00.12.H40", "000.00.00.H40"


async def test_an_unopened_copy_is_flagged_once_and_an_opened_one_never(service_db):
    settings, pool = await service_db("documents", MIGRATIONS)
    outbox = Outbox(settings)
    sha = "b" * 64
    await pool.execute("INSERT INTO files VALUES ($1, 10, 'application/pdf', '\\x00', $2, NULL)", sha, ARRIVED)
    doc = uuid.uuid4()
    await pool.execute(
        "INSERT INTO documents (id, sender_agency, number, issued_on, summary, doc_type, urgency, file_sha256, created_at, "
        "updated_at) VALUES ($1, '000.21.12.H40', '7/UBND-VP', $2, 'Trích yếu khẩn', 'Công văn', 'express', $3, $4, $4)",
        doc,
        ARRIVED.date(),
        sha,
        ARRIVED,
    )
    for agency in (DISTRICT, PROVINCE):
        await pool.execute(
            "INSERT INTO deliveries (document_id, recipient_agency, version, status, updated_at, arrived_at, view_due_at, "
            "process_due_at) VALUES ($1, $2, 1, 'arrived', $3, $3, $4, $5)",
            doc,
            agency,
            ARRIVED,
            ARRIVED + timedelta(hours=1),
            ARRIVED + timedelta(hours=4),
        )
    await pool.execute(
        "INSERT INTO views VALUES ($1, $2, 'official-000.00.12.h40', $3)",
        doc,
        DISTRICT,
        ARRIVED + timedelta(minutes=30),
    )

    assert await handlers.flag_unviewed(pool, outbox, ARRIVED + timedelta(minutes=59)) == 0  # not due yet
    assert await handlers.flag_unviewed(pool, outbox, ARRIVED + timedelta(hours=2)) == 1  # the province's copy
    assert await handlers.flag_unviewed(pool, outbox, ARRIVED + timedelta(hours=3)) == 0  # once
    events = await pool.fetch("SELECT headers::text AS h, convert_from(payload, 'UTF8') AS body FROM outbox")
    assert len(events) == 1 and "vn.lgsp.document.view_overdue.v1" in events[0]["h"]
    assert PROVINCE in events[0]["body"] and "7/UBND-VP" in events[0]["body"]

    later = ARRIVED + timedelta(hours=2)
    [province_copy] = await handlers.agency_documents(pool, PROVINCE, "incoming", later, 10)
    [district_copy] = await handlers.agency_documents(pool, DISTRICT, "incoming", later, 10)
    assert (province_copy["unviewed_overdue"], district_copy["unviewed_overdue"]) == (True, False)
    assert district_copy["first_viewed_at"] == ARRIVED + timedelta(minutes=30)
    assert province_copy["summary"] == "Trích yếu khẩn"
    [sent] = await handlers.agency_documents(pool, "000.21.12.H40", "outgoing", later, 10)
    assert sent["deliveries"] == [{"agency": PROVINCE, "status": "arrived"}, {"agency": DISTRICT, "status": "arrived"}]
