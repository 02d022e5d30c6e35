"""The managers' report against a known set of dossiers."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import RUN_ID
from services.intake import report
from services.intake.app import MIGRATIONS
from shared.db import create_pool, migrate
from shared.reference import load_reference

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
COMMUNE, PROVINCE_CENTRE = "000.21.12.H40", "000.00.01.H40"
_n = itertools.count()


def vn(day, hour=9):
    return datetime(2026, 3, day, hour, 0, tzinfo=VN)


# (agency, channel, result_delivery, status, received, legal due, resolved, apologies,
#  components: files / paper / reused, outcome, result kept as a file, result delivered by post at)
KNOWN = [
    # carried over, resolved early, approved with its result as a file
    (COMMUNE, "online", "counter", "returned", vn(2), vn(12, 17), vn(10), 0, "files", "approved", True, None),
    # received, on time; its result asked by post, which failed to deliver it: not BCCI;
    # scanned at the counter; approved, its paper result not scanned
    (COMMUNE, "counter", "postal", "resolved", vn(9), vn(11, 17), vn(11, 16), 0, "files", "approved", False, None),
    # received, late, apologised; brought on paper by the post; refused
    (COMMUNE, "postal", "counter", "returned", vn(9), vn(10, 17), vn(12), 1, "paper", "refused", False, None),
    # in progress on time; one component reused from an earlier result
    (COMMUNE, "online", "counter", "processing", vn(10), vn(20, 17), None, 0, "reused", None, False, None),
    # overdue, no apology yet; scanned
    (COMMUNE, "counter", "counter", "processing", vn(10), vn(12, 17), None, 0, "files", None, False, None),
    # on time (same day); its result delivered by the post: BCCI
    (
        PROVINCE_CENTRE,
        "online",
        "postal",
        "returned",
        vn(11),
        vn(13, 17),
        vn(13, 10),
        0,
        "files",
        "approved",
        True,
        vn(14),
    ),
    # withdrawn: not counted
    (PROVINCE_CENTRE, "counter", "counter", "withdrawn", vn(11), vn(13, 17), None, 0, "paper", None, False, None),
    # finished before the period
    (COMMUNE, "online", "counter", "returned", vn(1), vn(3, 17), vn(4), 0, "files", "approved", True, None),
    # after the period
    (COMMUNE, "online", "counter", "processing", vn(16), vn(18, 17), None, 0, "files", None, False, None),
]
SHA = "c" * 64
COMPONENTS = {
    "files": [
        {"component": "TP1", "name": "Tờ khai", "sha256": SHA},
        {"component": "TP2", "name": "Giấy", "sha256": SHA},
    ],
    "paper": [{"component": "TP1", "name": "Tờ khai", "sha256": None}, {"component": "TP2", "name": "Giấy"}],
    "reused": [
        {"component": "TP1", "name": "Tờ khai", "sha256": SHA},
        {"component": "TP2", "name": "Giấy", "sha256": SHA, "reused_from": "000.21.12.H40-260101-0001"},
    ],
}


@pytest.fixture
async def pool(settings_for):
    settings = settings_for("intake", schema_prefix=f"t{RUN_ID}_r{next(_n)}_")
    pool = await create_pool(settings.database_url, settings.schema)
    await migrate(pool, settings.schema, MIGRATIONS)
    for agency, channel, delivery, status, received, due, resolved, apologies, docs, outcome, result, posted in KNOWN:
        dossier_id = uuid.uuid4()
        await pool.execute(
            "INSERT INTO dossiers (id, code, procedure_code, procedure_name, agency_code, channel, applicant, documents, "
            "result_delivery, status, received_at, due_at, legal_due_at, resolved_at, apologies, updated_at, outcome, "
            "result_delivered_by_post_at) "
            "VALUES ($1, $2, '1.001193', 'Đăng ký khai sinh', $3, $4, $5, $12, $6, $7, $8, $9, $9, $10, $11, $8, $13, $14)",
            dossier_id,
            f"{agency}-2603{next(_n):02d}-0001",
            agency,
            channel,
            json.dumps({"full_name": "x"}),
            delivery,
            status,
            received,
            due,
            resolved,
            apologies,
            json.dumps(COMPONENTS[docs], ensure_ascii=False),
            outcome,
            posted,
        )
        if result:
            await pool.execute(
                "INSERT INTO dossier_files (dossier_id, sha256, role, name, media_type, size, bound_at) "
                "VALUES ($1, $2, 'result', 'Giấy khai sinh.pdf', 'application/pdf', 1000, $3)",
                dossier_id,
                SHA,
                resolved,
            )
    # the one resolved on time: rated by its citizen, its receipt sent to the national portal
    on_time = await pool.fetchval("SELECT id FROM dossiers WHERE legal_due_at = $1", vn(11, 17))
    await pool.execute(
        "INSERT INTO ratings (dossier_id, rating, source, rated_by, at) VALUES ($1, 'dissatisfied', 'lookup', 'citizen', $2)",
        on_time,
        vn(12),
    )
    await pool.execute(
        "INSERT INTO portal_updates (dossier_id, seq, status_code, payload, status, next_attempt_at, sent_at) "
        "VALUES ($1, 1, 1, '{}', 'sent', $2, $2)",
        on_time,
        vn(9),
    )
    # the overdue one's first step, still open past its own deadline: charged to the commune
    await pool.execute(
        "INSERT INTO dossier_steps (dossier_id, idx, name, kind, level, agency_code, due_at, assigned_at) "
        "SELECT id, 0, 'Thẩm định', 'handle', 'commune', agency_code, $2, received_at FROM dossiers "
        "WHERE status = 'processing' AND legal_due_at = $1",
        vn(12, 17),
        vn(11, 17),
    )
    yield pool
    await pool.close()


async def test_report_figures(pool):
    r = await report.compute(pool, REF, vn(9, 0), vn(16, 0), now=vn(20))
    commune = next(a for a in r["agencies"] if a["agency_code"] == COMMUNE)
    assert {k: commune[k] for k in report.FIELDS} == {
        "received": 4,
        "carried_over": 1,
        "resolved_early": 1,
        "resolved_on_time": 1,
        "resolved_late": 1,
        "in_progress_on_time": 1,
        "in_progress_due_soon": 0,
        "in_progress_overdue": 1,
        "online": 1,
        "bcci": 1,  # the one the post brought; the result the post failed to deliver is not counted
        "apologies_owed": 2,
        "apologies_sent": 1,
        # group 3: every component a file (scanned or reused) in 3 of the 4 received; 1 reused;
        # of the 2 approved in the period, 1 has its result as a file
        "components_digitised": 3,
        "reused": 1,
        "approved": 2,
        "results_digitised": 1,
        "returned_in_time": 0,
        "returned_late": 0,
        # one receipt reached the national portal; the 4 received are of a fully online procedure
        "synced": 1,
        "full_online_offered": 4,
        "full_online_filed": 1,
        "identity_checked": 0,  # a procedure not connected to the population database
        "fee_online": 0,  # birth registration is free
        "paid_online": 0,
        # one citizen rated: not satisfied
        "rated": 1,
        "rated_satisfied": 0,
        "rated_dissatisfied": 1,
        # the steps intake followed: the overdue one's first step overran
        "held": 1,
        "held_late": 1,
    }
    centre = next(a for a in r["agencies"] if a["agency_code"] == PROVINCE_CENTRE)
    assert (centre["received"], centre["resolved_on_time"], centre["online"], centre["bcci"]) == (2, 1, 1, 1)
    assert [lv["level"] for lv in r["levels"]] == ["province", "commune"]
    assert r["total"]["received"] == 6
    by_day = {t["day"].day: t for t in r["trend"]}
    assert sorted(by_day) == list(range(9, 16))  # every local day of [9th 00:00, 16th 00:00)
    assert (by_day[9]["received"], by_day[10]["received"], by_day[11]["received"]) == (2, 2, 2)
    assert (by_day[10]["resolved_in_time"], by_day[11]["resolved_in_time"], by_day[12]["resolved_late"]) == (1, 1, 1)
    assert by_day[13]["resolved_in_time"] == 1
    # the late one still in progress, with its code; nothing personal
    overdue_code = await pool.fetchval(
        "SELECT code FROM dossiers WHERE status = 'processing' AND legal_due_at = $1", vn(12, 17)
    )
    resolved_late_code = await pool.fetchval("SELECT code FROM dossiers WHERE legal_due_at = $1", vn(10, 17))
    assert [(d["code"], d["state"]) for d in r["late"]] == [
        (resolved_late_code, "resolved_late"),
        (overdue_code, "overdue"),
    ]
    assert r["late"][1]["charged_to"] == [
        {
            "agency_code": COMMUNE,
            "step_index": 0,
            "step_name": "Thẩm định",
            "late_minutes": (4 * 24 + 7) * 60,
        }  # judged at the end: 16/3 00:00
    ]
    assert r["late_total"] == 2
    assert "applicant" not in r["late"][0]
    # the list is paged: past its end, nothing; the count stays
    past = await report.compute(pool, REF, vn(9, 0), vn(16, 0), now=vn(20), late_offset=2, late_limit=5)
    assert (past["late_total"], past["late"]) == (2, [])
    table = report.render(r)
    assert "Ủy ban nhân dân xã Ninh Hải" in table and "TOTAL" in table


async def test_a_period_ending_later_is_judged_now(pool):
    """At 10:00 on the 12th a dossier due at 17:00 that day is not late yet, even for a
    period that ends on the 16th; a dossier past its due moment by then is."""
    r = await report.compute(pool, REF, vn(9, 0), vn(16, 0), now=vn(12, 10))
    commune = next(a for a in r["agencies"] if a["agency_code"] == COMMUNE)
    assert (commune["in_progress_on_time"], commune["in_progress_overdue"]) == (2, 0)
    assert commune["in_progress_due_soon"] == 1  # due at 17:00 today; the other in a week
    assert [d["state"] for d in r["late"]] == ["resolved_late"]  # none open is late yet
    assert (commune["apologies_owed"], commune["apologies_sent"]) == (1, 1)  # only the one resolved late
    r = await report.compute(pool, REF, vn(9, 0), vn(16, 0), now=vn(12, 17) + timedelta(minutes=1))
    commune = next(a for a in r["agencies"] if a["agency_code"] == COMMUNE)
    assert (commune["in_progress_on_time"], commune["in_progress_overdue"]) == (1, 1)
