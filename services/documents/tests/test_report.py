"""The monthly documents report against a known set, at a fixed moment."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.documents import report
from services.documents.app import MIGRATIONS
from shared.reference import load_reference
from shared.staff import StaffDirectory

VN = ZoneInfo("Asia/Ho_Chi_Minh")
COMMUNE, DISTRICT, PROVINCE = "000.21.12.H40", "000.00.12.H40", "000.00.00.H40"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=VN)


def vn(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=VN)


async def test_the_monthly_report_matches_a_known_set(service_db):
    _, pool = await service_db("documents", MIGRATIONS)
    sha = "a" * 64
    await pool.execute("INSERT INTO files VALUES ($1, 10, 'application/pdf', '\\x00', $2, NULL)", sha, vn(11, 1))
    d1, d2, d3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for doc, sender, created in ((d1, COMMUNE, vn(11, 3)), (d2, COMMUNE, vn(11, 5)), (d3, DISTRICT, vn(10, 30))):
        await pool.execute(
            "INSERT INTO documents (id, sender_agency, number, issued_on, summary, doc_type, urgency, file_sha256, created_at, "
            "updated_at) VALUES ($1, $2, $3, $4, 'Trích yếu', 'Công văn', 'normal', $5, $6, $6)",
            doc,
            sender,
            f"{doc.hex[:4]}/UBND-VP",
            created.date(),
            sha,
            created,
        )
    deliveries = [  # document, recipient, status, arrived, view due, process due, done
        (d1, DISTRICT, "done", vn(11, 3), vn(11, 3, 17), vn(11, 17), vn(11, 10)),
        (d1, PROVINCE, "arrived", vn(11, 3), vn(11, 3, 17), vn(11, 17), None),
        (d2, DISTRICT, "refused", None, None, None, None),
        (d3, DISTRICT, "done", vn(11, 2), vn(11, 2, 17), vn(11, 16), vn(11, 20)),
    ]
    for doc, agency, status, arrived, view_due, process_due, done in deliveries:
        await pool.execute(
            "INSERT INTO deliveries (document_id, recipient_agency, version, status, updated_at, arrived_at, view_due_at, "
            "process_due_at, done_at) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8)",
            doc,
            agency,
            status,
            arrived or vn(11, 5),
            arrived,
            view_due,
            process_due,
            done,
        )
        first = "refused" if status == "refused" else "arrived"
        await pool.execute(
            "INSERT INTO delivery_statuses (document_id, recipient_agency, version, status, code, at) "
            "VALUES ($1, $2, 1, $3, '01', $4)",
            doc,
            agency,
            first,
            arrived or vn(11, 5),
        )
    official = f"official-{DISTRICT.lower()}"
    for doc, username, at in ((d1, official, vn(11, 3, 10)), (d1, "official-2", vn(11, 4)), (d3, official, vn(11, 5))):
        await pool.execute("INSERT INTO views VALUES ($1, $2, $3, $4)", doc, DISTRICT, username, at)

    staff = StaffDirectory(
        {
            PROVINCE: {"officials": [{"username": "official-p", "mailbox": "p@lgsp.example.vn"}]},
            DISTRICT: {"officials": [{"username": official, "mailbox": "d@lgsp.example.vn"}]},
        }
    )
    r = await report.monthly(pool, load_reference("three_level"), date(2026, 11, 1), NOW, staff)

    incoming = {a["agency_code"]: a for a in r["incoming"]}
    assert {
        k: incoming[DISTRICT][k]
        for k in ("received", "viewed", "viewed_on_time", "finished", "finished_on_time", "viewing_rate", "below_floor")
    } == {
        "received": 2,
        "viewed": 2,
        "viewed_on_time": 1,
        "finished": 2,
        "finished_on_time": 1,
        "viewing_rate": 100.0,
        "below_floor": False,
    }
    assert (
        incoming[PROVINCE]["received"],
        incoming[PROVINCE]["viewed"],
        incoming[PROVINCE]["overdue_unviewed"],
        incoming[PROVINCE]["viewing_rate"],
        incoming[PROVINCE]["below_floor"],
    ) == (1, 0, 1, 0.0, True)
    assert COMMUNE not in incoming  # its only incoming copy was refused: never received
    officials = {o["username"]: o for o in r["officials"]}
    assert (
        officials[official]["viewed"],
        officials[official]["viewed_on_time"],
        officials[official]["viewing_rate"],
    ) == (2, 1, 100.0)
    assert (officials["official-2"]["viewing_rate"], officials["official-2"]["below_floor"]) == (50.0, True)
    # the province's official opened nothing: named, though no view of theirs exists
    assert {
        k: officials["official-p"][k] for k in ("agency_code", "received", "viewed", "viewing_rate", "below_floor")
    } == {"agency_code": PROVINCE, "received": 1, "viewed": 0, "viewing_rate": 0.0, "below_floor": True}
    assert len(officials) == 3
    assert r["outgoing"] == [
        {
            "agency_code": COMMUNE,
            "agency_name": "Ủy ban nhân dân xã Ninh Hải",
            "outgoing": 2,
            "sent_electronically": 2,
            "signed_both": 1,
            "signed_both_share": 50.0,
        }
    ]
    table = report.render(r)
    assert "NAMED: under the floor" in table and "Ủy ban nhân dân huyện Hoa Lư" in table


def test_a_month_is_its_local_days():
    start, end = report.month_bounds(date(2026, 12, 1))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+07:00", "2027-01-01T00:00:00+07:00")
