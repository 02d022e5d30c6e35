"""A replayed month of dossiers whose every figure is counted by hand below: who is counted
for what (the receiving agency, the handling unit, each agency for its own steps), a
district's delay charged to the district, on time at the decision beside on time at the
return, and a district manager's area. Pure: the report's rules over facts, no stack, and
"now" is passed in."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake import report
from services.intake.report import DossierFacts, StepFacts
from shared.reference import load_reference

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
NINH_HAI = "000.21.12.H40"  # a commune of huyện Hoa Lư
HOA_LU = "000.00.12.H40"  # the district's people's committee
CUC_PHUONG = "000.21.13.H40"  # a commune of another district (Nho Quan)
CENTRE = "000.00.01.H40"  # the province's public-service centre
SKHDT = "000.00.04.H40"  # a provincial department
START, END = datetime(2026, 3, 1, tzinfo=VN), datetime(2026, 4, 1, tzinfo=VN)
NOW = datetime(2026, 3, 25, 10, 0, tzinfo=VN)  # the month is judged at this moment


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=VN)


def step(i, kind, agency, due, assigned, finished=None) -> StepFacts:
    return StepFacts(i, f"bước {i}", kind, agency, due, assigned, finished)


def dossier(code: str, **kw) -> DossierFacts:
    base = dict(
        code=code,
        procedure_code="1.001193",
        procedure_name="Đăng ký khai sinh",
        agency_code=NINH_HAI,
        channel="counter",
        status="processing",
        due_at=kw.get("legal_due_at"),
    )
    return DossierFacts(**{**base, **kw})


MONTH = [
    # A: land, received online at the commune, handled and decided by the district, which overran
    # both its steps; refused; apologised once; returned after the appointment
    dossier(
        "A",
        procedure_code="1.004227",
        procedure_name="Đăng ký đất đai",
        channel="online",
        status="returned",
        outcome="refused",
        received_at=at(2, 8),
        legal_due_at=at(13, 17),
        resolved_at=at(16, 9),
        returned_at=at(17, 10),
        apologies=1,
        components_digitised=True,
        synced=True,
        rating="dissatisfied",
        decided_by="Trần Văn Hùng",
        steps=(
            step(0, "handle", NINH_HAI, at(3, 17), at(2, 8), at(3, 10)),
            step(1, "handle", HOA_LU, at(10, 17), at(3, 10), at(12, 9)),  # 40 h late
            step(2, "decide", HOA_LU, at(13, 17), at(12, 9), at(16, 9)),  # 64 h late
            step(3, "return", NINH_HAI, at(13, 17), at(16, 9), at(17, 10)),
        ),
    ),
    # B: decided on the due day by 17:00 (on time), but the citizen got it the day after
    dossier(
        "B",
        status="returned",
        outcome="approved",
        received_at=at(5, 8),
        legal_due_at=at(5, 17),
        resolved_at=at(5, 16),
        returned_at=at(6, 9),
        synced=True,
        rating="satisfied",
        decided_by="Nguyễn Thị Lan",
        steps=(
            step(0, "handle", NINH_HAI, at(5, 12), at(5, 8), at(5, 11)),
            step(1, "decide", NINH_HAI, at(5, 17), at(5, 11), at(5, 16)),
            step(2, "return", NINH_HAI, at(5, 17), at(5, 16), at(6, 9)),
        ),
    ),
    # C: brought by the post, its first step still open far past its deadline; no apology
    dossier(
        "C",
        channel="postal",
        received_at=at(20, 8),
        legal_due_at=at(20, 17),
        steps=(step(0, "handle", NINH_HAI, at(20, 12), at(20, 8)),),
    ),
    # D: online at the province's centre, decided early by a department, its file kept; the
    # post failed to deliver the result: not carried by the post
    dossier(
        "D",
        procedure_code="1.001612",
        procedure_name="Đăng ký doanh nghiệp",
        agency_code=CENTRE,
        channel="online",
        status="resolved",
        outcome="approved",
        received_at=at(10, 8),
        legal_due_at=at(13, 17),
        resolved_at=at(11, 15),
        components_digitised=True,
        synced=True,
        paid_online=True,
        result_file=True,
        steps=(
            step(0, "handle", SKHDT, at(12, 17), at(10, 8), at(11, 10)),
            step(1, "decide", SKHDT, at(13, 17), at(11, 10), at(11, 15)),
        ),
    ),
    # E: another district's commune; waiting for the citizen's supplement, its open step past
    # its deadline: the clock stopped, nobody is charged; within time overall
    dossier(
        "E",
        agency_code=CUC_PHUONG,
        status="supplement_requested",
        received_at=at(12, 8),
        legal_due_at=at(30, 17),
        steps=(step(0, "handle", CUC_PHUONG, at(12, 17), at(12, 8)),),
    ),
    # G: received in February, decided early on 2 March, returned in time; its result is a file.
    # Followed before steps were kept: its handling unit comes from the catalogue's route
    dossier(
        "G",
        status="returned",
        outcome="approved",
        received_at=at(25, 8, month=2),
        legal_due_at=at(3, 17),
        resolved_at=at(2, 10),
        returned_at=at(2, 11),
        result_file=True,
        rating="very_satisfied",
        decided_by="Nguyễn Thị Lan",
    ),
    # withdrawn before the month: not counted
    dossier(
        "W", status="withdrawn", received_at=at(20, month=2), legal_due_at=at(23, month=2), updated_at=at(21, month=2)
    ),
]

ZERO = dict.fromkeys(report.FIELDS, 0)
EXPECTED = {
    NINH_HAI: {
        **ZERO,
        # received here: A, B, C; G carried over; A online; C brought by the post; A all files
        "received": 3,
        "carried_over": 1,
        "online": 1,
        "bcci": 1,
        "components_digitised": 1,
        # A and B reached the national portal, C not yet; all three of fully online procedures, A filed online
        "synced": 2,
        "full_online_offered": 3,
        "full_online_filed": 1,
        "fee_online": 1,  # A's land fee, not paid online (before payments were connected)
        # handled here (B, C, G): G early, B on time, C overdue (owed an apology, none sent)
        "resolved_early": 1,
        "resolved_on_time": 1,
        "in_progress_overdue": 1,
        "returned_in_time": 1,
        "returned_late": 1,
        "apologies_owed": 1,
        "approved": 2,
        "results_digitised": 1,
        # B and G rated by their citizens, both satisfied
        "rated": 2,
        "rated_satisfied": 2,
        # its own steps: of A, B and C; only C's overran. A's delay is not the commune's
        "held": 3,
        "held_late": 1,
    },
    HOA_LU: {
        **ZERO,
        "resolved_late": 1,
        "returned_late": 1,
        "apologies_owed": 1,
        "apologies_sent": 1,
        "rated": 1,  # A's citizen was not satisfied
        "rated_dissatisfied": 1,
        "held": 1,
        "held_late": 1,
    },
    CENTRE: {
        **ZERO,
        "received": 1,
        "online": 1,
        "components_digitised": 1,
        "synced": 1,
        "full_online_offered": 1,
        "full_online_filed": 1,
        "fee_online": 1,
        "paid_online": 1,
    },
    SKHDT: {**ZERO, "resolved_early": 1, "approved": 1, "results_digitised": 1, "held": 1},
    CUC_PHUONG: {**ZERO, "received": 1, "full_online_offered": 1, "in_progress_on_time": 1, "held": 1},
}


def counts(row: dict) -> dict:
    return {k: row[k] for k in report.FIELDS}


def test_every_figure_of_the_month():
    r = report.tally(MONTH, REF, START, END, NOW)
    assert {a["agency_code"]: counts(a) for a in r["agencies"]} == EXPECTED
    assert counts(r["total"]) == {k: sum(e[k] for e in EXPECTED.values()) for k in report.FIELDS}
    levels = {lv["level"]: counts(lv) for lv in r["levels"]}
    assert levels["district"] == EXPECTED[HOA_LU]
    assert levels["commune"]["held_late"] == 1 and levels["commune"]["received"] == 4


def test_ratings_per_official_who_decided():
    r = report.tally(MONTH, REF, START, END, NOW)
    assert r["officials"] == [
        {
            "official": "Nguyễn Thị Lan",
            "agency_code": NINH_HAI,
            "resolved": 2,
            "resolved_late": 0,
            "rated": 2,
            "rated_satisfied": 2,
            "rated_dissatisfied": 0,
        },
        {
            "official": "Trần Văn Hùng",
            "agency_code": HOA_LU,
            "resolved": 1,
            "resolved_late": 1,
            "rated": 1,
            "rated_satisfied": 0,
            "rated_dissatisfied": 1,
        },
    ]


def test_the_dossiers_that_lost_points_name_whose_step_overran():
    r = report.tally(MONTH, REF, START, END, NOW)
    assert r["late_total"] == 2
    a, c = r["late"]
    assert (a["code"], a["state"], a["handling_agency"], a["late_minutes"]) == ("A", "resolved_late", HOA_LU, 64 * 60)
    assert [(x["agency_code"], x["step_index"], x["late_minutes"]) for x in a["charged_to"]] == [
        (HOA_LU, 1, 40 * 60),
        (HOA_LU, 2, 64 * 60),
    ]
    # C: due 20/3 17:00, judged 25/3 10:00; its step due 20/3 12:00
    assert (c["code"], c["state"], c["late_minutes"]) == ("C", "overdue", (4 * 24 + 17) * 60)
    assert [(x["agency_code"], x["step_index"], x["late_minutes"]) for x in c["charged_to"]] == [
        (NINH_HAI, 0, (4 * 24 + 22) * 60)
    ]
    page = report.tally(MONTH, REF, START, END, NOW, late_offset=1, late_limit=1)
    assert [d["code"] for d in page["late"]] == ["C"] and page["late_total"] == 2


def test_a_period_that_ended_before_now():
    """The period 1/3 to 12/3 10:00, looked at on the 25th, is judged as it stood at its end: C
    was not received yet, A was open and within time, though the district's first step had
    already overrun its own deadline; nothing had lost points yet."""
    r = report.tally(MONTH, REF, START, at(12, 10), NOW)
    rows = {a["agency_code"]: a for a in r["agencies"]}
    assert (rows[HOA_LU]["in_progress_on_time"], rows[HOA_LU]["held"], rows[HOA_LU]["held_late"]) == (1, 1, 1)
    assert rows[NINH_HAI]["held_late"] == 0 and rows[NINH_HAI]["received"] == 2
    assert r["late_total"] == 0


def test_a_district_manager_sees_the_district():
    area = report.area_for(frozenset({"manager"}), HOA_LU, None, REF)
    assert area == HOA_LU
    r = report.tally(MONTH, REF, START, END, NOW, area=report.area_codes(area, frozenset({"manager"}), REF))
    assert {a["agency_code"] for a in r["agencies"]} == {NINH_HAI, HOA_LU}
    assert r["total"]["received"] == 3 and r["total"]["held_late"] == 2
    assert [d["code"] for d in r["late"]] == ["A", "C"]
    other = report.tally(MONTH, REF, START, END, NOW, area=REF.catalogue.area("000.00.13.H40"))
    assert {a["agency_code"] for a in other["agencies"]} == {CUC_PHUONG} and other["late"] == []


@pytest.mark.parametrize(
    "roles, agency, asked, expected",
    [
        ({"operator"}, None, None, None),  # the whole province
        ({"operator"}, None, HOA_LU, HOA_LU),
        ({"manager"}, "000.00.00.H40", None, "000.00.00.H40"),  # the province's manager: all under it
        ({"manager"}, "000.00.00.H40", HOA_LU, HOA_LU),
        ({"manager"}, HOA_LU, NINH_HAI, NINH_HAI),
        ({"official"}, NINH_HAI, None, NINH_HAI),
    ],
)
def test_who_sees_which_area(roles, agency, asked, expected):
    assert report.area_for(frozenset(roles), agency, asked, REF) == expected


@pytest.mark.parametrize(
    "roles, agency, asked, status",
    [
        ({"manager"}, HOA_LU, "000.00.13.H40", 403),  # another district
        ({"manager"}, HOA_LU, "000.00.00.H40", 403),  # above it
        ({"official"}, NINH_HAI, HOA_LU, 403),
        ({"operator"}, None, "000.99.99.H40", 422),
    ],
)
def test_an_area_outside_ones_own_is_refused(roles, agency, asked, status):
    with pytest.raises(report.AreaRefused) as refused:
        report.area_for(frozenset(roles), agency, asked, REF)
    assert refused.value.status == status


def test_an_official_sees_their_agency_only():
    codes = report.area_codes(NINH_HAI, frozenset({"official"}), REF)
    assert codes == frozenset({NINH_HAI})
    assert len(report.area_codes(HOA_LU, frozenset({"manager"}), REF)) > 5
