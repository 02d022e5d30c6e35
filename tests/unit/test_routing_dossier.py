"""Routing's workflow rules (services/routing/dossier.py), in memory: no stack, fixed times."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.routing.dossier import DecisionDocument, Dossier, document_state_after
from shared.errors import Conflict
from shared.events import (
    Actor,
    DossierApologised,
    DossierAssigned,
    DossierAtRisk,
    DossierOverdue,
    DossierResolved,
    DossierResumed,
    DossierReturned,
    DossierStepAccepted,
    DossierStepOverdue,
    DossierStopped,
    DossierSupplementRequested,
    DossierTransferred,
    DossierWithdrawn,
)
from shared.reference import load_reference
from tests.helpers import RESULT

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
CAL = REF.calendar
COMMUNE, LAND_OFFICE, DISTRICT = "000.21.12.H40", "000.01.12.H40", "000.00.12.H40"
ACTOR = Actor(name="Vũ Văn Nam", title="Công chức", account="official-000.21.12.h40")
MON_9 = datetime(2026, 3, 2, 9, 0, tzinfo=VN)


def received(procedure: str = "1.000894", at: datetime = MON_9, agency: str = COMMUNE) -> Dossier:
    p = REF.catalogue.procedures[procedure]
    d, events = Dossier.open(
        dossier_id=uuid.uuid4(),
        code=f"{agency}-260302-0001",
        procedure_code=p.code,
        receiving_agency=agency,
        received_at=at,
        due_at=CAL.due_at(at, p.time_limit_days),
        route=REF.catalogue.route(p, agency),
        calendar=CAL,
        result_kind=p.result_kind,
    )
    d.catalogue_agencies = REF.catalogue.agencies
    assert [type(e) for e in events] == [DossierAssigned]
    return d


def to_decision(d: Dossier, now: datetime) -> None:
    """Every agency on the route accepts and forwards at ``now``, up to the deciding step."""
    while True:
        d.accept(d.step.agency_code, ACTOR, now)
        if d.step.kind == "decide":
            return
        d.forward(d.step.agency_code, ACTOR, now)


def test_opening_gives_each_step_its_cumulative_share_of_the_time_limit_and_assigns_the_first():
    d = received("1.004227")  # land certificate: commune 10 days, land office 12, district 8, then the return
    assert [s.due_at.astimezone(VN).date().isoformat() for s in d.steps] == [
        CAL.due_at(MON_9, 10).astimezone(VN).date().isoformat(),
        CAL.due_at(MON_9, 22).astimezone(VN).date().isoformat(),
        CAL.due_at(MON_9, 30).astimezone(VN).date().isoformat(),
        d.due_at.astimezone(VN).date().isoformat(),
    ]
    assert [s.status for s in d.steps] == ["assigned", "pending", "pending", "pending"]
    assert d.steps[0].assigned_at == MON_9 and d.status == "processing"


def test_only_the_holder_acts_and_a_step_is_accepted_before_it_is_forwarded():
    d = received("1.004227")
    with pytest.raises(Conflict, match="held by 000.21.12.H40, not 000.01.12.H40"):
        d.accept(LAND_OFFICE, ACTOR, MON_9)
    with pytest.raises(Conflict, match="must be accepted before it is forwarded"):
        d.forward(COMMUNE, ACTOR, MON_9)
    assert [type(e) for e in d.accept(COMMUNE, ACTOR, MON_9)] == [DossierStepAccepted]
    with pytest.raises(Conflict, match="not waiting to be accepted"):
        d.accept(COMMUNE, ACTOR, MON_9)


def test_forwarding_to_another_agency_transfers_the_dossier_between_levels():
    d = received("1.004227")
    d.accept(COMMUNE, ACTOR, MON_9)
    events = d.forward(COMMUNE, ACTOR, MON_9)
    assert [type(e) for e in events] == [DossierTransferred, DossierAssigned]
    moved = events[0]
    assert (moved.from_agency, moved.from_level, moved.to_agency, moved.to_level) == (
        COMMUNE,
        "commune",
        LAND_OFFICE,
        "district",
    )
    assert d.current_step == 1 and [s.status for s in d.steps[:2]] == ["done", "assigned"]
    # within one agency there is no transfer
    same = received("1.000894")
    same.accept(COMMUNE, ACTOR, MON_9)
    assert [type(e) for e in same.forward(COMMUNE, ACTOR, MON_9)] == [DossierAssigned]


def test_a_deciding_step_is_not_forwarded_and_only_it_decides():
    d = received("1.000894")
    d.accept(COMMUNE, ACTOR, MON_9)
    with pytest.raises(Conflict, match="does not decide"):
        d.resolve(COMMUNE, "approved", ACTOR, MON_9, CAL, extension_days=2, result_document=RESULT)
    d.forward(COMMUNE, ACTOR, MON_9)
    d.accept(COMMUNE, ACTOR, MON_9)
    with pytest.raises(Conflict, match="decides or returns"):
        d.forward(COMMUNE, ACTOR, MON_9)


def test_a_decision_on_time_resolves_skips_nothing_needed_and_hands_the_result_to_the_return_step():
    d = received("1.004227")
    noon = datetime(2026, 3, 3, 12, 0, tzinfo=VN)
    to_decision(d, noon)
    events = d.resolve(DISTRICT, "approved", ACTOR, noon, CAL, extension_days=2, result_document=RESULT)
    assert [type(e) for e in events] == [DossierResolved, DossierTransferred, DossierAssigned]
    assert events[0].on_time and events[0].result_document.name == RESULT["name"]
    assert d.status == "resolved" and d.step.kind == "return" and d.step.agency_code == COMMUNE
    with pytest.raises(Conflict, match="is resolved"):
        d.stop(COMMUNE, ["Hồ sơ giả mạo"], ACTOR, noon)
    returned = d.return_result(COMMUNE, "counter", ACTOR, noon)
    assert [type(e) for e in returned] == [DossierReturned]
    assert d.status == "returned" and all(s.status == "done" for s in d.steps)
    with pytest.raises(Conflict, match="already returned"):
        d.return_result(COMMUNE, "counter", ACTOR, noon)


def test_a_refusal_at_the_first_deciding_step_skips_the_steps_left_before_the_return():
    d = received("2.000286")  # commune, district, province handle; the province decides
    now = datetime(2026, 3, 3, 10, 0, tzinfo=VN)
    d.accept(COMMUNE, ACTOR, now)
    d.forward(COMMUNE, ACTOR, now)
    to_decision(d, now)
    d.resolve(d.step.agency_code, "refused", ACTOR, now, CAL, extension_days=2, reasons=["Không đủ điều kiện"])
    assert d.outcome == "refused" and d.step.idx == len(d.steps) - 1


def test_a_late_decision_owes_its_apology_once_even_before_the_scheduler_saw_it():
    d = received("1.000894")  # three days: due Thu 5 Mar 17:00
    late = datetime(2026, 3, 9, 10, 0, tzinfo=VN)
    to_decision(d, late)
    events = d.resolve(COMMUNE, "approved", ACTOR, late, CAL, extension_days=2, result_document=RESULT)
    assert [type(e) for e in events] == [DossierOverdue, DossierApologised, DossierResolved, DossierAssigned]
    assert events[1].agency_name == REF.catalogue.agencies[COMMUNE].name and "bước 2" in events[1].reason
    assert not events[2].on_time and d.apologies == 1
    assert events[2].due_at.astimezone(VN) == datetime(2026, 3, 5, 17, 0, tzinfo=VN)  # the appointment it missed
    assert d.deadlines(late, CAL, extension_days=2) == []  # resolved: nothing more to apologise for


def test_a_decision_result_must_be_the_signed_decision_of_the_deciding_agency_that_arrived():
    d = received("1.003596")  # land use change: the result is a decision of the district
    now = datetime(2026, 3, 3, 10, 0, tzinfo=VN)
    to_decision(d, now)

    def doc(**changes) -> DecisionDocument:
        base = dict(
            document_id=uuid.uuid4(),
            dossier_id=d.dossier_id,
            sender_agency=DISTRICT,
            number="12/QĐ-UBND",
            doc_type="Quyết định",
            sha256="a" * 64,
            size=2048,
            state="valid",
        )
        return DecisionDocument(**{**base, **changes})

    def approve(**kw):
        return d.resolve(DISTRICT, "approved", ACTOR, now, CAL, extension_days=2, **kw)

    with pytest.raises(Conflict, match="the result of 1.003596 is a decision"):
        approve(result_document=RESULT)
    with pytest.raises(Conflict, match="has reached routing"):
        approve(decision=None, decision_named=True)
    with pytest.raises(Conflict, match="has reached routing"):
        approve(decision=doc(dossier_id=uuid.uuid4()), decision_named=True)
    with pytest.raises(Conflict, match="must come from 000.00.12.H40"):
        approve(decision=doc(sender_agency=COMMUNE), decision_named=True)
    with pytest.raises(Conflict, match="signatures are being checked"):
        approve(decision=doc(state="checking"), decision_named=True)
    with pytest.raises(Conflict, match="refused on arrival: chữ ký không hợp lệ"):
        approve(decision=doc(state="refused", reason="chữ ký không hợp lệ"), decision_named=True)
    assert d.status == "processing"  # nothing moved on a refused approval
    decision = doc()
    resolved = approve(decision=decision, decision_named=True)[0]
    assert resolved.result_document.document_id == decision.document_id
    assert resolved.result_document.name == "Quyết định 12/QĐ-UBND.pdf"


def test_a_supplement_stops_the_clock_and_the_time_left_runs_again_from_its_arrival():
    d = received("1.000894")  # due Thu 5 Mar 17:00; the first step's share (2 days) ends Wed 17:00
    asked = datetime(2026, 3, 3, 10, 0, tzinfo=VN)
    d.accept(COMMUNE, ACTOR, asked)
    events = d.request_supplement(COMMUNE, ["Thiếu giấy xác nhận tình trạng hôn nhân"], ACTOR, asked, CAL)
    assert [type(e) for e in events] == [DossierSupplementRequested]
    left = events[0].remaining_minutes
    assert left == CAL.working_minutes_between(asked, d.due_at)
    with pytest.raises(Conflict, match="is supplement_requested"):
        d.forward(COMMUNE, ACTOR, asked)
    # paused a month: never overdue meanwhile
    assert d.deadlines(datetime(2026, 4, 1, 9, 0, tzinfo=VN), CAL, extension_days=2) == []
    back = datetime(2026, 3, 16, 8, 0, tzinfo=VN)  # Monday two weeks later, at opening
    resumed = d.resume(back, back, CAL)
    assert [type(e) for e in resumed] == [DossierResumed]
    assert CAL.working_minutes_between(back, d.due_at) == left
    assert resumed[0].previous_due_at < resumed[0].due_at == d.due_at
    assert d.status == "processing" and d.paused_at is None
    assert d.resume(back, back, CAL) == []  # a supplement nobody asked for changes nothing


def test_stopping_and_withdrawing_end_the_dossier_and_skip_its_open_steps():
    d = received("1.004227")
    d.accept(COMMUNE, ACTOR, MON_9)
    assert [type(e) for e in d.stop(COMMUNE, ["Hồ sơ giả mạo"], ACTOR, MON_9)] == [DossierStopped]
    assert d.status == "stopped" and [s.status for s in d.steps] == ["skipped"] * 4
    with pytest.raises(Conflict, match="already stopped"):
        d.withdraw(["Công dân rút hồ sơ"], MON_9)
    w = received("1.000894")
    w.request_supplement(COMMUNE, ["Thiếu giấy tờ"], ACTOR, MON_9, CAL)
    assert [type(e) for e in w.withdraw(["Công dân rút hồ sơ"], MON_9)] == [DossierWithdrawn]
    assert w.status == "withdrawn" and w.paused_at is None


def test_time_passing_warns_once_apologises_once_per_due_date_and_flags_a_late_step_once():
    d = received("1.000894")  # due Thu 5 Mar 17:00
    assert d.deadlines(datetime(2026, 3, 3, 9, 0, tzinfo=VN), CAL, extension_days=2) == []  # 2.5 days left
    soon = datetime(2026, 3, 5, 10, 0, tzinfo=VN)  # 7 working hours left
    kinds = [type(e) for e in d.deadlines(soon, CAL, extension_days=2)]
    assert kinds == [DossierAtRisk, DossierStepOverdue]  # and the first step's 2 days are over
    assert d.deadlines(datetime(2026, 3, 5, 11, 0, tzinfo=VN), CAL, extension_days=2) == []
    late = datetime(2026, 3, 6, 9, 0, tzinfo=VN)
    events = d.deadlines(late, CAL, extension_days=2)
    assert [type(e) for e in events] == [DossierOverdue, DossierApologised]
    assert d.due_at.astimezone(VN) == datetime(2026, 3, 10, 17, 0, tzinfo=VN)  # two working days after the apology
    assert all(s.due_at >= d.due_at for s in d.steps if s.open)
    assert d.deadlines(datetime(2026, 3, 6, 9, 30, tzinfo=VN), CAL, extension_days=2) == []
    # the new date passes too: a second apology, for the new date
    second = d.deadlines(datetime(2026, 3, 11, 9, 0, tzinfo=VN), CAL, extension_days=2)
    assert [type(e) for e in second][:2] == [DossierOverdue, DossierApologised] and d.apologies == 2


def test_a_document_is_valid_once_it_arrived_checked_and_a_recall_ends_it():
    assert document_state_after("checking", "arrived", checked_by_platform=True) == "valid"
    assert document_state_after("checking", "refused", checked_by_platform=True) == "refused"
    assert document_state_after("checking", "refused", checked_by_platform=False) == "checking"  # an official's refusal
    assert document_state_after("valid", "recalled", checked_by_platform=False) == "recalled"
    assert document_state_after("valid", "accepted", checked_by_platform=False) == "valid"
