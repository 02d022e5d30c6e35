"""Routing's use cases: starting a dossier's workflow, agencies' step actions, supplements,
deadlines and the timeline. Every one writes its state change and its events in one
transaction (event handlers run inside the inbox transaction, see shared/consumer.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Link

from shared.clock import Clock
from shared.consumer import EventConsumer, Rejected
from shared.dossier_text import summarise, summarise_document
from shared.events import (
    Actor, DocumentRef, DocumentSent, DocumentStatusChanged, DossierApologised, DossierAssigned, DossierAtRisk,
    DossierEvent, DossierOverdue, DossierReceived, DossierResolved, DossierResumed, DossierReturned, DossierStepAccepted, DossierStepOverdue, DossierStopped,
    DossierSupplemented, DossierSupplementRequested, DossierTransferred, DossierWithdrawn, Envelope, EventData,
    ShipmentBooked, ShipmentProgressed,
)
from shared.outbox import Outbox
from shared.reference import Reference
from shared.telemetry import context_from_headers, current_trace_headers, current_trace_id, trace_id_of, tracer
from services.routing.schemas import (
    AcceptStep, ForwardStep, Outcome, RequestSupplement, Resolve, ReturnResult, StepCommand, StopProcessing, Withdraw,
)

log = logging.getLogger(__name__)
FINISHED = ("returned", "withdrawn", "stopped")


class Conflict(Exception):
    """An action that does not fit the dossier's state or its holder (HTTP 409)."""


class NotFound(Exception):
    pass


# ------------------------------------------------------------------ starting the workflow


async def start_workflow(event: DossierReceived, conn: asyncpg.Connection, *, outbox: Outbox, ref: Reference,
                         now: datetime) -> None:
    procedure = ref.catalogue.procedures.get(event.procedure_code)
    if procedure is None:
        raise Rejected(f"procedure {event.procedure_code} is not in routing's catalogue ({ref.catalogue.variant})")
    try:
        route = ref.catalogue.route(procedure, event.agency_code)
    except LookupError as exc:
        raise Rejected(f"no route for {event.procedure_code} from {event.agency_code}: {exc}") from exc
    # Each step's deadline is its cumulative share of the time limit, counted from receipt.
    elapsed, dues = Decimal(0), []
    for step in route:
        elapsed += step.days
        dues.append(event.due_at if step.kind == "return" else ref.calendar.due_at(event.at, elapsed))
    # The dossier and its steps in one statement, the first step assigned at receipt.
    inserted = await conn.fetchval(
        "WITH dossier AS (INSERT INTO dossiers (dossier_id, code, procedure_code, receiving_agency, status, current_step, "
        "  received_at, due_at, trace_id, traceparent, updated_at, result_kind) "
        "  VALUES ($1, $2, $3, $4, 'processing', 0, $5, $6, $7, $8, $5, $9) ON CONFLICT (dossier_id) DO NOTHING RETURNING true), "
        "steps AS (INSERT INTO steps (dossier_id, idx, name, kind, level, agency_code, days, due_at, status, assigned_at) "
        "  SELECT $1, s.* , CASE WHEN s.idx = 0 THEN 'assigned' ELSE 'pending' END, CASE WHEN s.idx = 0 THEN $5 END "
        "  FROM unnest($10::int[], $11::text[], $12::text[], $13::text[], $14::text[], $15::numeric[], $16::timestamptz[]) "
        "    AS s(idx, name, kind, level, agency_code, days, due_at) WHERE EXISTS (SELECT 1 FROM dossier)) "
        "SELECT true FROM dossier",
        event.dossier_id, event.dossier_code, procedure.code, event.agency_code, event.at, event.due_at,
        current_trace_id(), current_trace_headers().get("traceparent"), procedure.result_kind,
        [s.index for s in route], [s.name for s in route], [s.kind for s in route], [s.level for s in route],
        [s.agency_code for s in route], [s.days for s in route], dues,
    )
    if not inserted:
        return
    first = route[0]
    await outbox.add(conn, DossierAssigned(
        dossier_id=event.dossier_id, dossier_code=event.dossier_code, at=event.at, step_index=first.index,
        step_name=first.name, step_kind=first.kind, level=first.level, agency_code=first.agency_code,
        step_due_at=dues[0], due_at=event.due_at,
    ))


async def _assign(conn, outbox: Outbox, dossier_id, idx: int, at: datetime, from_step: asyncpg.Record, actor: Actor,
                  *, finish_from_step: bool, events_before: tuple[EventData, ...] = ()) -> None:
    """Hand the dossier on to step ``idx`` (finishing ``from_step`` in the same statement when
    asked), then write ``events_before``, the transfer if the agency changes, and the
    assignment, in this order."""
    step = await conn.fetchrow(
        "WITH finished AS (UPDATE steps SET status = 'done', finished_at = $3 WHERE dossier_id = $1 AND idx = $4), "
        "step AS (UPDATE steps SET status = 'assigned', assigned_at = $3 WHERE dossier_id = $1 AND idx = $2 RETURNING *), "
        "dossier AS (UPDATE dossiers SET current_step = $2, updated_at = $3 WHERE dossier_id = $1 RETURNING code, due_at) "
        "SELECT step.*, dossier.code AS dossier_code, dossier.due_at AS dossier_due_at FROM step, dossier",
        dossier_id, idx, at, from_step["idx"] if finish_from_step else None,
    )
    events = list(events_before)
    if from_step["agency_code"] != step["agency_code"]:
        events.append(DossierTransferred(
            dossier_id=dossier_id, dossier_code=step["dossier_code"], at=at, from_agency=from_step["agency_code"],
            from_level=from_step["level"], to_agency=step["agency_code"], to_level=step["level"], step_index=idx,
            actor=actor,
        ))
    events.append(DossierAssigned(
        dossier_id=dossier_id, dossier_code=step["dossier_code"], at=at, step_index=idx, step_name=step["name"],
        step_kind=step["kind"], level=step["level"], agency_code=step["agency_code"], step_due_at=step["due_at"],
        due_at=step["dossier_due_at"],
    ))
    await outbox.add_all(conn, events)


# ------------------------------------------------------------------ agencies' actions


@dataclass(frozen=True)
class Held:
    """A dossier locked for an action, with its current step."""
    dossier: asyncpg.Record
    step: asyncpg.Record

    @property
    def code(self) -> str:
        return self.dossier["code"]


async def held(conn, code: str, cmd) -> Held:
    """Lock the dossier, read its current step, and check the acting agency holds it (one
    round trip). Only a step command names an agency; a withdrawal is the citizen's."""
    row = await conn.fetchrow(
        "SELECT d.*, s AS step FROM dossiers d JOIN steps s ON s.dossier_id = d.dossier_id AND s.idx = d.current_step "
        "WHERE d.code = $1 FOR UPDATE OF d", code)
    if row is None:
        raise NotFound(f"no dossier with code {code!r}")
    if row["status"] in FINISHED:
        raise Conflict(f"dossier {code} is already {row['status']}")
    step = row["step"]
    if isinstance(cmd, StepCommand) and step["agency_code"] != cmd.agency_code:
        raise Conflict(f"step '{step['name']}' of {code} is held by {step['agency_code']}, not {cmd.agency_code}")
    return Held(row, step)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Conflict(message)


async def accept_step(h: Held, cmd: AcceptStep, *, conn, outbox: Outbox, actor: Actor, now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(step["status"] == "assigned", f"step '{step['name']}' is {step['status']}, not waiting to be accepted")
    await conn.execute("UPDATE steps SET status = 'in_progress', accepted_at = $3 WHERE dossier_id = $1 AND idx = $2",
                       d["dossier_id"], step["idx"], now)
    await outbox.add(conn, DossierStepAccepted(dossier_id=d["dossier_id"], dossier_code=code, at=now,
                                               step_index=step["idx"], agency_code=step["agency_code"], actor=actor))


async def forward_step(h: Held, cmd: ForwardStep, *, conn, outbox: Outbox, actor: Actor, now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(d["status"] == "processing", f"dossier {code} is {d['status']}")
    _require(step["kind"] == "handle", f"step '{step['name']}' decides or returns; it is not forwarded")
    _require(step["status"] == "in_progress", f"step '{step['name']}' must be accepted before it is forwarded")
    await _assign(conn, outbox, d["dossier_id"], step["idx"] + 1, now, step, actor, finish_from_step=True)


async def request_supplement(h: Held, cmd: RequestSupplement, *, conn, outbox: Outbox, actor: Actor, ref: Reference,
                             now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(d["status"] == "processing", f"dossier {code} is {d['status']}")
    _require(step["kind"] != "return", "a dossier being returned cannot ask for a supplement")
    remaining = ref.calendar.working_minutes_between(now, d["due_at"])
    await conn.execute("UPDATE dossiers SET status = 'supplement_requested', paused_at = $2, updated_at = $2 "
                       "WHERE dossier_id = $1", d["dossier_id"], now)
    await outbox.add(conn, DossierSupplementRequested(
        dossier_id=d["dossier_id"], dossier_code=code, at=now, agency_code=step["agency_code"], step_index=step["idx"],
        reasons=tuple(cmd.reasons), remaining_minutes=remaining, actor=actor,
    ))


async def resolve(h: Held, cmd: Resolve, *, conn, outbox: Outbox, actor: Actor, ref: Reference, extension_days: float,
                  now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(d["status"] == "processing", f"dossier {code} is {d['status']}")
    _require(step["kind"] == "decide", f"step '{step['name']}' does not decide the dossier")
    _require(step["status"] == "in_progress", f"step '{step['name']}' must be accepted before deciding")
    result = cmd.result_document
    if cmd.outcome is Outcome.approved:
        _require(d["result_kind"] != "decision" or cmd.decision_document_id is not None,
                 f"the result of {d['procedure_code']} is a decision: the deciding agency signs it, sends it through the "
                 f"documents service with dossier_code {code}, and names it here in decision_document_id")
        if cmd.decision_document_id is not None:
            result = await _signed_decision(conn, d, step["agency_code"], cmd.decision_document_id)
    if now > d["due_at"] and d["overdue_for"] != d["due_at"]:
        # Decided late before the scheduler's next pass saw it: the apology is owed all the same.
        await _apologise(conn, outbox, ref, d, step["agency_code"], step["idx"], now, extension_days)
    # The deciding step is done, whatever steps remain before the return are not needed any
    # more (a refusal ends the work), and the dossier is resolved: one statement.
    last = await conn.fetchval(
        "WITH last AS (SELECT max(idx) AS idx FROM steps WHERE dossier_id = $1), "
        "finished AS (UPDATE steps SET status = 'done', finished_at = $3 WHERE dossier_id = $1 AND idx = $2), "
        "skipped AS (UPDATE steps SET status = 'skipped' WHERE dossier_id = $1 AND idx > $2 AND idx < (SELECT idx FROM last)), "
        "resolved AS (UPDATE dossiers SET status = 'resolved', outcome = $4, resolved_at = $3, updated_at = $3 "
        "  WHERE dossier_id = $1) "
        "SELECT idx FROM last", d["dossier_id"], step["idx"], now, cmd.outcome.value)
    resolved = DossierResolved(
        dossier_id=d["dossier_id"], dossier_code=code, at=now, outcome=cmd.outcome.value, agency_code=step["agency_code"],
        result_document=result, reasons=tuple(cmd.reasons), due_at=d["due_at"],
        on_time=now <= d["due_at"], actor=actor,
    )
    await _assign(conn, outbox, d["dossier_id"], last, now, step, actor, finish_from_step=False,
                  events_before=(resolved,))


async def _signed_decision(conn, d: asyncpg.Record, decider: str, document_id) -> DocumentRef:
    """The decision named by an approval, as the result it becomes: sent for this dossier by
    the deciding agency, and its current version's signatures checked on arrival."""
    doc = await conn.fetchrow("SELECT * FROM dossier_documents WHERE document_id = $1", document_id)
    _require(doc is not None and doc["dossier_id"] == d["dossier_id"],
             f"no document {document_id} sent for dossier {d['code']} has reached routing: send it through the documents "
             "service with this dossier_code, then approve once it has arrived")
    _require(doc["sender_agency"] == decider,
             f"document {doc['number']} was sent by {doc['sender_agency']}; the decision must come from {decider}")
    _require(doc["state"] == "valid", {
        "checking": f"document {doc['number']} has not arrived yet: its signatures are being checked; try again shortly",
        "refused": f"document {doc['number']} was refused on arrival: {doc['reason']}",
        "recalled": f"document {doc['number']} was recalled by its sender",
    }.get(doc["state"], f"document {doc['number']} is {doc['state']}"))
    return DocumentRef(name=f"{doc['doc_type']} {doc['number']}.pdf"[:255], media_type="application/pdf", size=doc["size"],
                       sha256=doc["sha256"], number=doc["number"], document_id=doc["document_id"])


async def return_result(h: Held, cmd: ReturnResult, *, conn, outbox: Outbox, actor: Actor, now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(d["status"] == "resolved", f"dossier {code} is {d['status']}; only a resolved dossier is returned")
    await conn.execute(
        "WITH finished AS (UPDATE steps SET status = 'done', finished_at = $3 WHERE dossier_id = $1 AND idx = $2) "
        "UPDATE dossiers SET status = 'returned', finished_at = $3, updated_at = $3 WHERE dossier_id = $1",
        d["dossier_id"], step["idx"], now)
    await outbox.add(conn, DossierReturned(dossier_id=d["dossier_id"], dossier_code=code, at=now,
                                           agency_code=step["agency_code"], method=cmd.method.value, actor=actor))


async def stop_processing(h: Held, cmd: StopProcessing, *, conn, outbox: Outbox, actor: Actor, now: datetime) -> None:
    d, step, code = h.dossier, h.step, h.code
    _require(d["status"] in ("processing", "supplement_requested"), f"dossier {code} is {d['status']}")
    await _finish(conn, d["dossier_id"], "stopped", now)
    await outbox.add(conn, DossierStopped(dossier_id=d["dossier_id"], dossier_code=code, at=now,
                                          agency_code=step["agency_code"], reasons=tuple(cmd.reasons), actor=actor))


async def withdraw(h: Held, cmd: Withdraw, *, conn, outbox: Outbox, now: datetime) -> None:
    d, code = h.dossier, h.code
    _require(d["status"] in ("processing", "supplement_requested"), f"dossier {code} is {d['status']}")
    await _finish(conn, d["dossier_id"], "withdrawn", now)
    await outbox.add(conn, DossierWithdrawn(dossier_id=d["dossier_id"], dossier_code=code, at=now, reasons=tuple(cmd.reasons)))


async def _finish(conn, dossier_id, status: str, now: datetime) -> None:
    """The dossier ends before its result: the open steps are not needed any more."""
    await conn.execute(
        "WITH skipped AS (UPDATE steps SET status = 'skipped' WHERE dossier_id = $1 "
        "  AND status IN ('pending', 'assigned', 'in_progress')) "
        "UPDATE dossiers SET status = $2, finished_at = $3, paused_at = NULL, updated_at = $3 WHERE dossier_id = $1",
        dossier_id, status, now)


# ------------------------------------------------------------------ supplements


async def resume_after_supplement(event: DossierSupplemented, conn, *, outbox: Outbox, ref: Reference,
                                  now: datetime) -> None:
    """The supplement arrived: the remaining time of the dossier and its open steps runs again."""
    d = await conn.fetchrow("SELECT * FROM dossiers WHERE dossier_id = $1 FOR UPDATE", event.dossier_id)
    if d is None or d["status"] != "supplement_requested":
        log.info("routing.supplement_ignored dossier=%s status=%s", event.dossier_code, d["status"] if d else None)
        return
    cal, paused, resumed = ref.calendar, d["paused_at"], event.at

    def shifted(due: datetime) -> datetime:
        return cal.add_working_minutes(max(resumed, paused), cal.working_minutes_between(paused, due))

    new_due = shifted(d["due_at"])
    steps = await conn.fetch("SELECT idx, due_at FROM steps WHERE dossier_id = $1 AND status IN ('pending', 'assigned', 'in_progress')",
                             event.dossier_id)
    for s in steps:
        await conn.execute("UPDATE steps SET due_at = $3 WHERE dossier_id = $1 AND idx = $2",
                           event.dossier_id, s["idx"], shifted(s["due_at"]))
    await conn.execute("UPDATE dossiers SET status = 'processing', paused_at = NULL, due_at = $2, updated_at = $3 "
                       "WHERE dossier_id = $1", event.dossier_id, new_due, now)
    step = await conn.fetchrow("SELECT * FROM steps WHERE dossier_id = $1 AND idx = $2", event.dossier_id, d["current_step"])
    await outbox.add(conn, DossierResumed(
        dossier_id=event.dossier_id, dossier_code=d["code"], at=resumed, agency_code=step["agency_code"],
        step_index=step["idx"], previous_due_at=d["due_at"], due_at=new_due, step_due_at=step["due_at"],
    ))


# ------------------------------------------------------------------ deadlines


async def _apologise(conn, outbox: Outbox, ref: Reference, d: asyncpg.Record, holder: str, step_idx: int,
                     now: datetime, extension_days: float) -> None:
    """The dossier ``d`` is past its due moment: the agency at fault apologises with a new
    appointment date, once per due date (``overdue_for`` remembers which)."""
    new_due = ref.calendar.due_at(now, extension_days)
    agency = ref.catalogue.agencies.get(holder)
    await conn.execute(
        "UPDATE dossiers SET overdue_for = due_at, due_at = $2, apologies = apologies + 1, updated_at = $3 "
        "WHERE dossier_id = $1", d["dossier_id"], new_due, now,
    )
    await conn.execute("UPDATE steps SET due_at = greatest(due_at, $2) WHERE dossier_id = $1 AND status IN "
                       "('pending', 'assigned', 'in_progress')", d["dossier_id"], new_due)
    common = dict(dossier_id=d["dossier_id"], dossier_code=d["code"], at=now)
    await outbox.add_all(conn, [
        DossierOverdue(**common, agency_code=holder, due_at=d["due_at"]),
        DossierApologised(**common, agency_code=holder, agency_name=agency.name if agency else holder,
                          previous_due_at=d["due_at"], new_due_at=new_due,
                          reason=f"Hồ sơ chưa được giải quyết đúng hạn tại bước {step_idx + 1}"),
    ])


def in_dossier_trace(traceparent: str | None, name: str, *, link_here: bool = False):
    """A span in the dossier's own trace, so the events emitted inside join its journey;
    ``link_here`` links it to the span current now (the HTTP request, or the document's trace
    an event came in on)."""
    here = trace.get_current_span().get_span_context()
    return tracer("lgsp.routing").start_as_current_span(
        name, context=context_from_headers({"traceparent": traceparent} if traceparent else {}),
        links=[Link(here)] if link_here and here.is_valid else [])


async def scan_deadlines(pool: asyncpg.Pool, outbox: Outbox, ref: Reference, *, extension_days: float,
                         now: datetime, batch: int = 200) -> dict[str, int]:
    """One pass of the deadline scheduler. Safe with several routing instances: rows are
    claimed with SKIP LOCKED and each warning is tied to the due date it was sent for."""
    counts = {"overdue": 0, "at_risk": 0, "step_overdue": 0}
    cal = ref.calendar
    async with pool.acquire() as conn, conn.transaction():
        late = await conn.fetch(
            "SELECT d.*, s.agency_code AS holder, s.idx AS step_idx FROM dossiers d "
            "JOIN steps s ON s.dossier_id = d.dossier_id AND s.idx = d.current_step "
            "WHERE d.status = 'processing' AND d.due_at < $1 AND d.overdue_for IS DISTINCT FROM d.due_at "
            "ORDER BY d.due_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED", now, batch,
        )
        for d in late:
            with in_dossier_trace(d["traceparent"], "routing deadline overdue"):
                await _apologise(conn, outbox, ref, d, d["holder"], d["step_idx"], now, extension_days)
            counts["overdue"] += 1

        soon = await conn.fetch(
            "SELECT d.*, s.agency_code AS holder FROM dossiers d "
            "JOIN steps s ON s.dossier_id = d.dossier_id AND s.idx = d.current_step "
            "WHERE d.status = 'processing' AND d.due_at >= $1 AND d.due_at < $1 + interval '15 days' "
            "AND d.at_risk_for IS DISTINCT FROM d.due_at ORDER BY d.due_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
            now, batch,
        )
        for d in soon:
            if cal.working_minutes_between(now, d["due_at"]) > cal.office.minutes_per_day:
                continue
            await conn.execute("UPDATE dossiers SET at_risk_for = due_at WHERE dossier_id = $1", d["dossier_id"])
            with in_dossier_trace(d["traceparent"], "routing deadline at-risk"):
                await outbox.add(conn, DossierAtRisk(dossier_id=d["dossier_id"], dossier_code=d["code"], at=now,
                                                     agency_code=d["holder"], due_at=d["due_at"]))
            counts["at_risk"] += 1

        steps = await conn.fetch(
            "SELECT s.dossier_id, d.code, d.traceparent, s.idx, s.agency_code, s.due_at FROM steps s JOIN dossiers d USING (dossier_id) "
            "WHERE d.status = 'processing' AND s.status IN ('assigned', 'in_progress') AND NOT s.overdue_flagged "
            "AND s.due_at < $1 AND s.kind <> 'return' LIMIT $2 FOR UPDATE OF s SKIP LOCKED", now, batch,
        )
        for s in steps:
            await conn.execute("UPDATE steps SET overdue_flagged = true WHERE dossier_id = $1 AND idx = $2",
                               s["dossier_id"], s["idx"])
            with in_dossier_trace(s["traceparent"], "routing deadline step-overdue"):
                await outbox.add(conn, DossierStepOverdue(dossier_id=s["dossier_id"], dossier_code=s["code"], at=now,
                                                          step_index=s["idx"], agency_code=s["agency_code"],
                                                          step_due_at=s["due_at"]))
            counts["step_overdue"] += 1
    return counts


# ------------------------------------------------------------------ the timeline


async def _timeline_entry(conn, envelope: Envelope, dossier_id, code: str, at: datetime, summary: str,
                          agency: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO timeline (event_id, dossier_id, dossier_code, event_type, at, source, agency_code, trace_id, summary) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        envelope.id, dossier_id, code, envelope.type, at, envelope.source, agency, current_trace_id(), summary,
    )


async def record_timeline(events: list[tuple[EventData, Envelope]], conn: asyncpg.Connection) -> None:
    """Append every dossier event of a batch, from any service, to the dossiers' timelines:
    one read for what the events do not carry, one insert for all the rows."""
    shipments = [e for e, _ in events if isinstance(e, (ShipmentBooked, ShipmentProgressed))]
    # a pickup's events come before its dossier exists: those have no timeline yet
    codes = dict(await conn.fetch("SELECT dossier_id, code FROM dossiers WHERE dossier_id = ANY($1::uuid[])",
                                  list({e.dossier_id for e in shipments}))) if shipments else {}
    wanted = [(e.dossier_id, e.step_index) for e, _ in events if isinstance(e, DossierEvent)
              and getattr(e, "step_index", None) is not None and getattr(e, "step_due_at", None) is None]
    step_dues = {(r["dossier_id"], r["idx"]): r["due_at"] for r in await conn.fetch(
        "SELECT s.dossier_id, s.idx, s.due_at FROM steps s JOIN unnest($1::uuid[], $2::int[]) AS w(dossier_id, idx) "
        "ON s.dossier_id = w.dossier_id AND s.idx = w.idx", [w[0] for w in wanted], [w[1] for w in wanted])} if wanted else {}
    rows = []
    for event, envelope in events:
        trace_id = trace_id_of(envelope.traceparent)
        if isinstance(event, (ShipmentBooked, ShipmentProgressed)):
            if event.dossier_id not in codes:
                continue
            what = f"Bưu điện: {event.kind} {getattr(event, 'status', 'booked')}" + (
                f" ({event.reason})" if getattr(event, "reason", None) else "")
            rows.append((envelope.id, event.dossier_id, codes[event.dossier_id], envelope.type, event.at, envelope.source,
                         None, None, None, None, trace_id, what))
        elif isinstance(event, DossierEvent):
            step_index = getattr(event, "step_index", None)
            step_due = getattr(event, "step_due_at", None) or step_dues.get((event.dossier_id, step_index))
            rows.append((envelope.id, event.dossier_id, event.dossier_code, envelope.type, event.at, envelope.source,
                         getattr(event, "agency_code", None) or getattr(event, "to_agency", None), step_index, step_due,
                         _late(event, step_due), trace_id, summarise(event)))
    if rows:
        await conn.execute(
            "INSERT INTO timeline (event_id, dossier_id, dossier_code, event_type, at, source, agency_code, step_index, "
            "step_due_at, late, trace_id, summary) SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], "
            "$5::timestamptz[], $6::text[], $7::text[], $8::int[], $9::timestamptz[], $10::boolean[], $11::text[], $12::text[]) "
            "ON CONFLICT DO NOTHING", *map(list, zip(*rows)))


def _late(event: DossierEvent, step_due: datetime | None) -> bool | None:
    """Whether the event marks lateness: a decision after the due date, a warning of one, or
    a step action after the step's own deadline."""
    if isinstance(event, DossierResolved):
        return not event.on_time
    if isinstance(event, (DossierOverdue, DossierApologised, DossierStepOverdue)):
        return True
    if step_due is not None and not isinstance(event, (DossierAssigned, DossierResumed)):
        return event.at > step_due
    return None


async def delivered_by_post(event: ShipmentProgressed, conn, *, outbox: Outbox) -> None:
    """The post delivered the result: the dossier is returned. A failed delivery leaves the
    return step with the receiving agency, so the citizen collects it at the counter."""
    if event.kind != "delivery" or event.status != "delivered":
        return
    code = await conn.fetchval("SELECT code FROM dossiers WHERE dossier_id = $1 AND status = 'resolved'", event.dossier_id)
    if code is None:
        return
    h = await held(conn, code, None)
    await return_result(h, ReturnResult(agency_code=h.step["agency_code"], method="postal"), conn=conn, outbox=outbox,
                        actor=Actor(name="Bưu điện", title="BCCI"), now=event.at)


# ------------------------------------------------------------------ documents sent for a dossier


async def document_sent(event: DocumentSent, envelope: Envelope, conn, *, now: datetime) -> None:
    """A document sent about a dossier (a commune asking the district, a decision): kept, so an
    approval can name it, and put on the dossier's timeline and in its trace."""
    if event.dossier_code is None:
        return
    d = await conn.fetchrow(
        "SELECT dossier_id, code, traceparent, (receiving_agency = $2 OR EXISTS (SELECT 1 FROM steps s "
        "  WHERE s.dossier_id = d.dossier_id AND s.agency_code = $2)) AS sender_on_route "
        "FROM dossiers d WHERE code = $1", event.dossier_code, event.sender_agency)
    if d is None:
        log.info("routing.document_for_unknown_dossier document=%s", event.document_id)
        return
    if not d["sender_on_route"]:
        # Only an agency the dossier passes through may attach a document to it; the document
        # itself still reaches its recipients, it is just not the dossier's.
        raise Rejected(f"document {event.number} names dossier {event.dossier_code}, but its sender "
                       f"{event.sender_agency} is not on that dossier's route: not linked")
    await conn.execute(
        "INSERT INTO dossier_documents (document_id, dossier_id, sender_agency, number, doc_type, version, sha256, size, "
        "state, sent_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'checking', $9, $10) "
        "ON CONFLICT (document_id) DO UPDATE SET version = EXCLUDED.version, sha256 = EXCLUDED.sha256, size = EXCLUDED.size, "
        "state = 'checking', reason = NULL, updated_at = EXCLUDED.updated_at "
        "WHERE dossier_documents.version < EXCLUDED.version",
        event.document_id, d["dossier_id"], event.sender_agency, event.number, event.doc_type, event.version,
        event.file.sha256, event.file.size, event.at, now)
    with in_dossier_trace(d["traceparent"], "routing document for dossier", link_here=True):
        await _timeline_entry(conn, envelope, d["dossier_id"], d["code"], event.at,
                              summarise_document(event, event.number), event.sender_agency)


async def document_status_changed(event: DocumentStatusChanged, envelope: Envelope, conn, *, now: datetime) -> None:
    """A copy of a dossier's document moved: its arrival means both signatures checked out, a
    refusal by the check (no official's name on it) that they did not; either way the
    dossier's timeline shows it."""
    doc = await conn.fetchrow(
        "SELECT x.*, d.code, d.traceparent FROM dossier_documents x JOIN dossiers d USING (dossier_id) "
        "WHERE x.document_id = $1", event.document_id)
    if doc is None or event.version < doc["version"]:
        return
    state = doc["state"]
    if event.status == "arrived" and state == "checking":
        state = "valid"
    elif event.status == "refused" and event.by is None and state == "checking":
        state = "refused"
    elif event.status == "recalled":
        state = "recalled"
    if state != doc["state"]:
        await conn.execute("UPDATE dossier_documents SET state = $2, reason = $3, updated_at = $4 WHERE document_id = $1",
                           event.document_id, state, event.reason, now)
    with in_dossier_trace(doc["traceparent"], "routing document status for dossier", link_here=True):
        await _timeline_entry(conn, envelope, doc["dossier_id"], doc["code"], event.at,
                              summarise_document(event, doc["number"]), event.recipient_agency)


def register(consumer: EventConsumer, outbox: Outbox, ref: Reference, clock: Clock) -> None:
    @consumer.on(DossierReceived)
    async def dossier_received(event, envelope, conn):
        await start_workflow(event, conn, outbox=outbox, ref=ref, now=clock.now())

    @consumer.on(DossierSupplemented)
    async def dossier_supplemented(event, envelope, conn):
        await resume_after_supplement(event, conn, outbox=outbox, ref=ref, now=clock.now())

    @consumer.on(ShipmentProgressed)
    async def shipment_progressed(event, envelope, conn):
        await delivered_by_post(event, conn, outbox=outbox)

    @consumer.on(DocumentSent)
    async def on_document_sent(event, envelope, conn):
        await document_sent(event, envelope, conn, now=clock.now())

    @consumer.on(DocumentStatusChanged)
    async def on_document_status_changed(event, envelope, conn):
        await document_status_changed(event, envelope, conn, now=clock.now())

    consumer.on_every_batch(record_timeline)

