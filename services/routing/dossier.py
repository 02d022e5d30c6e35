"""A dossier's workflow across agencies and levels, as a plain model: what may happen next,
and the events each action causes. No I/O and no clock: the time is an argument, and the
working-day calendar a pure object passed in.

Handlers (handlers.py) load a ``Dossier`` with its steps, call one method, save it and add
the events it returned to the outbox, in one transaction. The rules here are tested in
memory (tests/unit/test_routing_dossier.py); the platform tests prove the flows around them.

Statuses. A dossier is ``processing``, ``supplement_requested`` (its clock stopped),
``resolved`` (decided, its result not yet handed over), then ``returned``, ``withdrawn`` or
``stopped``. A step is ``pending``, ``assigned`` (to its agency), ``in_progress`` (accepted),
then ``done`` or ``skipped``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Mapping, Sequence

from shared.errors import Conflict
from shared.events import (
    Actor,
    DocumentRef,
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
    EventData,
)
from shared.reference.calendar import WorkingCalendar
from shared.reference.catalogue import Agency, RouteStep

FINISHED = ("returned", "withdrawn", "stopped")
OPEN_STEP = ("pending", "assigned", "in_progress")
AT_RISK_WITHIN = timedelta(days=15)  # calendar days ahead the scheduler looks for dossiers soon due


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Conflict(message)


@dataclass
class Step:
    idx: int
    name: str
    kind: str  # handle, decide, return
    level: str
    agency_code: str
    days: Decimal
    due_at: datetime
    status: str = "pending"
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    finished_at: datetime | None = None
    overdue_flagged: bool = False

    @property
    def open(self) -> bool:
        return self.status in OPEN_STEP


@dataclass(frozen=True)
class DecisionDocument:
    """A document sent for the dossier, as routing saw it arrive: what an approval may name."""

    document_id: uuid.UUID
    dossier_id: uuid.UUID
    sender_agency: str
    number: str
    doc_type: str
    sha256: str
    size: int
    state: str  # checking, valid, refused, recalled
    reason: str | None = None


@dataclass
class Dossier:
    dossier_id: uuid.UUID
    code: str
    procedure_code: str
    receiving_agency: str
    received_at: datetime
    due_at: datetime
    steps: list[Step]
    status: str = "processing"
    current_step: int = 0
    result_kind: str = "paper"
    outcome: str | None = None
    paused_at: datetime | None = None
    at_risk_for: datetime | None = None
    overdue_for: datetime | None = None
    apologies: int = 0
    resolved_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    trace_id: str | None = None
    traceparent: str | None = None
    # the catalogue's agencies (code -> agency): an apology names the agency at fault
    catalogue_agencies: Mapping[str, Agency] = field(default_factory=dict, repr=False, compare=False)
    # what the store held of each step when it was loaded (store.py), so a save writes only
    # the steps an action changed; the rules never read it
    as_loaded: dict[int, tuple] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        dossier_id: uuid.UUID,
        code: str,
        procedure_code: str,
        receiving_agency: str,
        received_at: datetime,
        due_at: datetime,
        route: Sequence[RouteStep],
        calendar: WorkingCalendar,
        result_kind: str = "paper",
    ) -> tuple["Dossier", list[EventData]]:
        """The workflow of a received dossier: each step's deadline is its cumulative share of
        the time limit, counted from receipt (the return step's is the dossier's own), and the
        first step is assigned at once."""
        _require(bool(route), f"procedure {procedure_code} has no workflow steps")
        elapsed, steps = Decimal(0), []
        for s in route:
            elapsed += s.days
            due = due_at if s.kind == "return" else calendar.due_at(received_at, elapsed)
            steps.append(
                Step(
                    idx=s.index,
                    name=s.name,
                    kind=s.kind,
                    level=s.level,
                    agency_code=s.agency_code,
                    days=s.days,
                    due_at=due,
                )
            )
        d = cls(
            dossier_id=dossier_id,
            code=code,
            procedure_code=procedure_code,
            receiving_agency=receiving_agency,
            received_at=received_at,
            due_at=due_at,
            steps=steps,
            result_kind=result_kind,
            updated_at=received_at,
        )
        first = steps[0]
        first.status, first.assigned_at = "assigned", received_at
        return d, [d._assigned(first, received_at)]

    # ------------------------------------------------------------ reading

    @property
    def step(self) -> Step:
        """The step the dossier stands at."""
        return self.steps[self.current_step]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def held_by(self, agency_code: str | None) -> Step:
        """The current step, checking the dossier is still open and, when an agency acts
        (``agency_code``), that it holds the step. A withdrawal is the citizen's: no agency."""
        _require(not self.finished, f"dossier {self.code} is already {self.status}")
        step = self.step
        _require(
            agency_code is None or step.agency_code == agency_code,
            f"step '{step.name}' of {self.code} is held by {step.agency_code}, not {agency_code}",
        )
        return step

    # ------------------------------------------------------------ agencies' actions

    def accept(self, agency_code: str, actor: Actor, now: datetime) -> list[EventData]:
        step = self.held_by(agency_code)
        _require(step.status == "assigned", f"step '{step.name}' is {step.status}, not waiting to be accepted")
        step.status, step.accepted_at = "in_progress", now
        self.updated_at = now
        return [
            DossierStepAccepted(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=now,
                step_index=step.idx,
                agency_code=step.agency_code,
                actor=actor,
            )
        ]

    def forward(self, agency_code: str, actor: Actor, now: datetime) -> list[EventData]:
        step = self.held_by(agency_code)
        self._require_processing()
        _require(step.kind == "handle", f"step '{step.name}' decides or returns; it is not forwarded")
        _require(step.status == "in_progress", f"step '{step.name}' must be accepted before it is forwarded")
        self._finish_step(step, now)
        return self._hand_on(step.idx + 1, step, actor, now)

    def request_supplement(
        self, agency_code: str, reasons: Sequence[str], actor: Actor, now: datetime, calendar: WorkingCalendar
    ) -> list[EventData]:
        step = self.held_by(agency_code)
        self._require_processing()
        _require(step.kind != "return", "a dossier being returned cannot ask for a supplement")
        remaining = calendar.working_minutes_between(now, self.due_at)
        self.status, self.paused_at, self.updated_at = "supplement_requested", now, now
        return [
            DossierSupplementRequested(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=now,
                agency_code=step.agency_code,
                step_index=step.idx,
                reasons=tuple(reasons),
                remaining_minutes=remaining,
                actor=actor,
            )
        ]

    def resolve(
        self,
        agency_code: str,
        outcome: str,
        actor: Actor,
        now: datetime,
        calendar: WorkingCalendar,
        *,
        extension_days: float,
        result_document: DocumentRef | None = None,
        decision: DecisionDocument | None = None,
        decision_named: bool = False,
        reasons: Sequence[str] = (),
    ) -> list[EventData]:
        """Decide the dossier. An approval of a procedure whose result is a decision names the
        decision the deciding agency signed and sent (``decision``: as routing saw it arrive,
        None when it has not; ``decision_named``: the approval named one). Decided after the
        due moment and before the scheduler noticed, the apology is owed all the same. The
        steps left before the return are skipped; the return step is assigned."""
        step = self.held_by(agency_code)
        self._require_processing()
        _require(step.kind == "decide", f"step '{step.name}' does not decide the dossier")
        _require(step.status == "in_progress", f"step '{step.name}' must be accepted before deciding")
        result = result_document
        if outcome == "approved":
            _require(
                self.result_kind != "decision" or decision_named,
                f"the result of {self.procedure_code} is a decision: the deciding agency signs it, sends it "
                f"through the documents service with dossier_code {self.code}, and names it here in "
                "decision_document_id",
            )
            if decision_named:
                result = self._decision_as_result(decision, step.agency_code)
        events: list[EventData] = []
        due = self.due_at  # judged against the appointment in force, not the apology's new one
        if now > due and self.overdue_for != due:
            events += self._apologise(step, now, calendar, extension_days)
        self._finish_step(step, now)
        last = self.steps[-1]
        for s in self.steps[step.idx + 1 : last.idx]:
            s.status = "skipped"  # a decision ends the work; a refusal needs no more handling
        self.status, self.outcome, self.resolved_at = "resolved", outcome, now
        events.append(
            DossierResolved(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=now,
                outcome=outcome,
                agency_code=step.agency_code,
                result_document=result,
                reasons=tuple(reasons),
                due_at=due,
                on_time=now <= due,
                actor=actor,
            )
        )
        return events + self._hand_on(last.idx, step, actor, now)

    def _decision_as_result(self, doc: DecisionDocument | None, decider: str) -> DocumentRef:
        _require(
            doc is not None and doc.dossier_id == self.dossier_id,
            f"no such document sent for dossier {self.code} has reached routing: send it through the documents "
            "service with this dossier_code, then approve once it has arrived",
        )
        assert doc is not None
        _require(
            doc.sender_agency == decider,
            f"document {doc.number} was sent by {doc.sender_agency}; the decision must come from {decider}",
        )
        _require(
            doc.state == "valid",
            {
                "checking": f"document {doc.number} has not arrived yet: its signatures are being checked; try again shortly",
                "refused": f"document {doc.number} was refused on arrival: {doc.reason}",
                "recalled": f"document {doc.number} was recalled by its sender",
            }.get(doc.state, f"document {doc.number} is {doc.state}"),
        )
        return DocumentRef(
            name=f"{doc.doc_type} {doc.number}.pdf"[:255],
            media_type="application/pdf",
            size=doc.size,
            sha256=doc.sha256,
            number=doc.number,
            document_id=doc.document_id,
        )

    def return_result(self, agency_code: str, method: str, actor: Actor, now: datetime) -> list[EventData]:
        step = self.held_by(agency_code)
        _require(
            self.status == "resolved", f"dossier {self.code} is {self.status}; only a resolved dossier is returned"
        )
        self._finish_step(step, now)
        self.status, self.finished_at, self.updated_at = "returned", now, now
        return [
            DossierReturned(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=now,
                agency_code=step.agency_code,
                method=method,
                actor=actor,
            )
        ]

    def stop(self, agency_code: str, reasons: Sequence[str], actor: Actor, now: datetime) -> list[EventData]:
        step = self.held_by(agency_code)
        self._end_early("stopped", now)
        return [
            DossierStopped(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=now,
                agency_code=step.agency_code,
                reasons=tuple(reasons),
                actor=actor,
            )
        ]

    def withdraw(self, reasons: Sequence[str], now: datetime) -> list[EventData]:
        self.held_by(None)
        self._end_early("withdrawn", now)
        return [DossierWithdrawn(dossier_id=self.dossier_id, dossier_code=self.code, at=now, reasons=tuple(reasons))]

    # ------------------------------------------------------------ the citizen's supplement

    def resume(self, resumed_at: datetime, now: datetime, calendar: WorkingCalendar) -> list[EventData]:
        """The supplement arrived: the dossier's remaining working time, and each open step's,
        runs again from ``resumed_at``. Nothing happens unless a supplement was awaited."""
        if self.status != "supplement_requested" or self.paused_at is None:
            return []
        paused = self.paused_at

        def shifted(due: datetime) -> datetime:
            return calendar.add_working_minutes(max(resumed_at, paused), calendar.working_minutes_between(paused, due))

        previous_due = self.due_at
        for s in self.steps:
            if s.open:
                s.due_at = shifted(s.due_at)
        self.due_at = shifted(previous_due)
        self.status, self.paused_at, self.updated_at = "processing", None, now
        step = self.step
        return [
            DossierResumed(
                dossier_id=self.dossier_id,
                dossier_code=self.code,
                at=resumed_at,
                agency_code=step.agency_code,
                step_index=step.idx,
                previous_due_at=previous_due,
                due_at=self.due_at,
                step_due_at=step.due_at,
            )
        ]

    # ------------------------------------------------------------ deadlines

    def deadlines(self, now: datetime, calendar: WorkingCalendar, *, extension_days: float) -> list[EventData]:
        """What the passing of time brings at ``now``, each once: an apology with a new
        appointment when the dossier is past due (once per due date), a warning when less than
        a working day is left (once per due date), and a step that overran its own deadline
        (once per step; the return step has none of its own)."""
        if self.status != "processing":
            return []
        events: list[EventData] = []
        step = self.step
        if self.due_at < now and self.overdue_for != self.due_at:
            events += self._apologise(step, now, calendar, extension_days)
        elif (
            self.due_at >= now
            and self.at_risk_for != self.due_at
            and calendar.working_minutes_between(now, self.due_at) <= calendar.office.minutes_per_day
        ):
            self.at_risk_for = self.due_at
            events.append(
                DossierAtRisk(
                    dossier_id=self.dossier_id,
                    dossier_code=self.code,
                    at=now,
                    agency_code=step.agency_code,
                    due_at=self.due_at,
                )
            )
        for s in self.steps:
            if (
                s.status in ("assigned", "in_progress")
                and not s.overdue_flagged
                and s.due_at < now
                and s.kind != "return"
            ):
                s.overdue_flagged = True
                events.append(
                    DossierStepOverdue(
                        dossier_id=self.dossier_id,
                        dossier_code=self.code,
                        at=now,
                        step_index=s.idx,
                        agency_code=s.agency_code,
                        step_due_at=s.due_at,
                    )
                )
        return events

    def _apologise(
        self, step: Step, now: datetime, calendar: WorkingCalendar, extension_days: float
    ) -> list[EventData]:
        """Past its due moment: the agency holding the dossier apologises with a new
        appointment date; the open steps' deadlines move no earlier than it."""
        previous, new_due = self.due_at, calendar.due_at(now, extension_days)
        self.overdue_for, self.due_at, self.apologies, self.updated_at = previous, new_due, self.apologies + 1, now
        for s in self.steps:
            if s.open:
                s.due_at = max(s.due_at, new_due)
        common = dict(dossier_id=self.dossier_id, dossier_code=self.code, at=now)
        return [
            DossierOverdue(**common, agency_code=step.agency_code, due_at=previous),
            DossierApologised(
                **common,
                agency_code=step.agency_code,
                agency_name=agency.name
                if (agency := self.catalogue_agencies.get(step.agency_code))
                else step.agency_code,
                previous_due_at=previous,
                new_due_at=new_due,
                reason=f"Hồ sơ chưa được giải quyết đúng hạn tại bước {step.idx + 1}",
            ),
        ]

    # ------------------------------------------------------------ moving between steps

    def _require_processing(self) -> None:
        _require(self.status == "processing", f"dossier {self.code} is {self.status}")

    def _finish_step(self, step: Step, now: datetime) -> None:
        step.status, step.finished_at = "done", now
        self.updated_at = now

    def _end_early(self, status: str, now: datetime) -> None:
        """The dossier ends before its result: the open steps are not needed any more."""
        _require(self.status in ("processing", "supplement_requested"), f"dossier {self.code} is {self.status}")
        for s in self.steps:
            if s.open:
                s.status = "skipped"
        self.status, self.finished_at, self.paused_at, self.updated_at = status, now, None, now

    def _hand_on(self, idx: int, from_step: Step, actor: Actor, now: datetime) -> list[EventData]:
        """Assign step ``idx``; a transfer first when the agency changes."""
        to = self.steps[idx]
        to.status, to.assigned_at = "assigned", now
        self.current_step, self.updated_at = idx, now
        events: list[EventData] = []
        if from_step.agency_code != to.agency_code:
            events.append(
                DossierTransferred(
                    dossier_id=self.dossier_id,
                    dossier_code=self.code,
                    at=now,
                    from_agency=from_step.agency_code,
                    from_level=from_step.level,
                    to_agency=to.agency_code,
                    to_level=to.level,
                    step_index=idx,
                    actor=actor,
                )
            )
        return events + [self._assigned(to, now)]

    def _assigned(self, step: Step, now: datetime) -> DossierAssigned:
        return DossierAssigned(
            dossier_id=self.dossier_id,
            dossier_code=self.code,
            at=now,
            step_index=step.idx,
            step_name=step.name,
            step_kind=step.kind,
            level=step.level,
            agency_code=step.agency_code,
            step_due_at=step.due_at,
            due_at=self.due_at,
        )


def document_state_after(state: str, status: str, *, checked_by_platform: bool) -> str:
    """A dossier's document as routing sees it, after a recipient's copy moved to ``status``:
    its arrival means both signatures checked out (it is ``valid``: an approval may name it);
    a refusal by the arrival check itself (no official refused it) means they did not; a
    recall by the sender ends it."""
    if status == "arrived" and state == "checking":
        return "valid"
    if status == "refused" and checked_by_platform and state == "checking":
        return "refused"
    if status == "recalled":
        return "recalled"
    return state
