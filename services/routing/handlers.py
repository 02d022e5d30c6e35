"""Routing's use cases: starting a dossier's workflow, agencies' step actions, supplements,
deadlines and the timeline. Every one writes its state change and its events in one
transaction (event handlers run inside the inbox transaction, see shared/consumer.py)."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from services.routing import store
from services.routing.dossier import AT_RISK_WITHIN, Dossier, document_state_after
from services.routing.schemas import (
    AcceptStep,
    ForwardStep,
    RequestSupplement,
    Resolve,
    ReturnResult,
    StopProcessing,
)
from shared import dossier_files
from shared.clock import Clock
from shared.consumer import EventConsumer, Rejected
from shared.dossier_text import summarise, summarise_document
from shared.errors import NotFound, Unprocessable
from shared.events import (
    Actor,
    DocumentRef,
    DocumentSent,
    DocumentStatusChanged,
    DossierApologised,
    DossierAssigned,
    DossierAtRisk,
    DossierEvent,
    DossierOverdue,
    DossierReceived,
    DossierResolved,
    DossierResumed,
    DossierStepOverdue,
    DossierSupplemented,
    Envelope,
    EventData,
    ShipmentBooked,
    ShipmentProgressed,
    Withdraw,
)
from shared.outbox import Outbox
from shared.reference import Reference
from shared.telemetry import (
    current_trace_headers,
    current_trace_id,
    in_trace,
    trace_id_of,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ starting the workflow


async def start_workflow(
    event: DossierReceived, conn: asyncpg.Connection, *, outbox: Outbox, ref: Reference, now: datetime
) -> None:
    procedure = ref.catalogue.procedures.get(event.procedure_code)
    if procedure is None:
        raise Rejected(f"procedure {event.procedure_code} is not in routing's catalogue ({ref.catalogue.variant})")
    try:
        route = ref.catalogue.route(procedure, event.agency_code)
    except LookupError as exc:
        raise Rejected(f"no route for {event.procedure_code} from {event.agency_code}: {exc}") from exc
    d, events = Dossier.open(
        dossier_id=event.dossier_id,
        code=event.dossier_code,
        procedure_code=procedure.code,
        receiving_agency=event.agency_code,
        received_at=event.at,
        due_at=event.due_at,
        route=route,
        calendar=ref.calendar,
        result_kind=procedure.result_kind,
    )
    d.trace_id, d.traceparent = current_trace_id(), current_trace_headers().get("traceparent")
    if await store.insert(conn, d):
        await dossier_files.bind(conn, d.dossier_id, event.documents, "component", event.at)
        await outbox.add_all(conn, events)


# ------------------------------------------------------------------ agencies' actions

# each command's span name in the dossier's trace
ACTIONS: dict[type, str] = {
    AcceptStep: "accept_step",
    ForwardStep: "forward_step",
    RequestSupplement: "request_supplement",
    Resolve: "resolve",
    ReturnResult: "return_result",
    StopProcessing: "stop_processing",
    Withdraw: "withdraw",
}


async def act(
    conn: asyncpg.Connection,
    code: str,
    cmd,
    *,
    outbox: Outbox,
    ref: Reference,
    now: datetime,
    actor: Actor | None = None,
    extension_days: float,
) -> Dossier:
    """An agency's action on the step it holds (or the citizen's withdrawal), in the dossier's
    own trace: load and lock the dossier, let the model decide, save it, add its events."""
    d = await store.load(conn, ref.catalogue.agencies, code=code)
    if d is None:
        raise NotFound(f"no dossier with code {code!r}")
    with in_dossier_trace(d.traceparent, f"routing {ACTIONS[type(cmd)]}", link_here=True):
        events = await _decide(conn, d, cmd, ref=ref, now=now, actor=actor, extension_days=extension_days)
        await store.save(conn, [d])
        for e in events:
            if isinstance(e, DossierResolved) and e.result_document is not None:
                await dossier_files.bind(conn, d.dossier_id, [e.result_document], "result", now)
        await outbox.add_all(conn, events)
    return d


async def _decide(
    conn, d: Dossier, cmd, *, ref: Reference, now: datetime, actor: Actor | None, extension_days: float
) -> list[EventData]:
    if isinstance(cmd, Withdraw):
        return d.withdraw(cmd.reasons, now)
    assert actor is not None, "an agency's action names who acted"
    match cmd:
        case AcceptStep():
            return d.accept(cmd.agency_code, actor, now)
        case ForwardStep():
            return d.forward(cmd.agency_code, actor, now)
        case RequestSupplement():
            return d.request_supplement(cmd.agency_code, cmd.reasons, actor, now, ref.calendar)
        case Resolve():
            result = await _scanned_result(conn, cmd)
            named = cmd.decision_document_id is not None
            decision = (
                None
                if cmd.decision_document_id is None
                else await store.decision_document(conn, cmd.decision_document_id)
            )
            return d.resolve(
                cmd.agency_code,
                cmd.outcome.value,
                actor,
                now,
                ref.calendar,
                extension_days=extension_days,
                result_document=result,
                decision=decision,
                decision_named=named,
                reasons=cmd.reasons,
            )
        case ReturnResult():
            return d.return_result(cmd.agency_code, cmd.method.value, actor, now)
        case StopProcessing():
            return d.stop(cmd.agency_code, cmd.reasons, actor, now)
    raise TypeError(f"routing has no action for {type(cmd).__name__}")


async def _scanned_result(conn, cmd: Resolve) -> DocumentRef | None:
    """A paper result described by the deciding agency: when it names a file (the scan), the
    file must be one that agency uploaded here; its size and type are the stored file's."""
    doc = cmd.result_document
    if doc is None or doc.sha256 is None:
        return doc
    row = await conn.fetchrow(
        "SELECT size, media_type FROM uploads WHERE sha256 = $1 AND agency_code = $2", doc.sha256, cmd.agency_code
    )
    if row is None:
        raise Unprocessable(
            f"no file {doc.sha256[:12]}… uploaded by {cmd.agency_code}: upload the result's scan first (POST /v1/files)",
            errors=[{"field": "result_document.sha256", "reason": "not uploaded"}],
        )
    return doc.model_copy(update={"size": row["size"], "media_type": row["media_type"], "document_id": None})


# ------------------------------------------------------------------ supplements


async def resume_after_supplement(
    event: DossierSupplemented, conn, *, outbox: Outbox, ref: Reference, now: datetime
) -> None:
    """The supplement arrived: the remaining time of the dossier and its open steps runs again."""
    d = await store.load(conn, ref.catalogue.agencies, dossier_id=event.dossier_id)
    if d is not None:
        await dossier_files.bind(conn, d.dossier_id, event.documents, "supplement", event.at)
    events = d.resume(event.at, now, ref.calendar) if d else []
    if d is None or not events:
        log.info("routing.supplement_ignored dossier=%s status=%s", event.dossier_code, d.status if d else None)
        return
    await store.save(conn, [d])
    await outbox.add_all(conn, events)


# ------------------------------------------------------------------ deadlines


def in_dossier_trace(traceparent: str | None, name: str, *, link_here: bool = False):
    return in_trace("lgsp.routing", traceparent, name, link_here=link_here)


async def scan_deadlines(
    pool: asyncpg.Pool, outbox: Outbox, ref: Reference, *, extension_days: float, now: datetime, batch: int = 200
) -> dict[str, int]:
    """One pass of the deadline scheduler. Safe with several routing instances: dossiers are
    claimed with SKIP LOCKED and each warning is tied to the due date it was sent for."""
    counts = {"overdue": 0, "at_risk": 0, "step_overdue": 0}
    kinds = {DossierOverdue: "overdue", DossierAtRisk: "at_risk", DossierStepOverdue: "step_overdue"}
    async with pool.acquire() as conn, conn.transaction():
        claimed = await store.claim_due(conn, now, now + AT_RISK_WITHIN, batch, ref.catalogue.agencies)
        changed = []
        for d in claimed:
            events = d.deadlines(now, ref.calendar, extension_days=extension_days)
            if not events:
                continue
            changed.append(d)
            for e in events:
                if type(e) in kinds:
                    counts[kinds[type(e)]] += 1
            with in_dossier_trace(d.traceparent, f"routing deadline {kinds[type(events[0])].replace('_', '-')}"):
                await outbox.add_all(conn, events)
        await store.save(conn, changed)
    return counts


# ------------------------------------------------------------------ the timeline


async def _timeline_entry(
    conn, envelope: Envelope, dossier_id, code: str, at: datetime, summary: str, agency: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO timeline (event_id, dossier_id, dossier_code, event_type, at, source, agency_code, trace_id, summary) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        envelope.id,
        dossier_id,
        code,
        envelope.type,
        at,
        envelope.source,
        agency,
        current_trace_id(),
        summary,
    )


async def record_timeline(events: list[tuple[EventData, Envelope]], conn: asyncpg.Connection) -> None:
    """Append every dossier event of a batch, from any service, to the dossiers' timelines:
    one read for what the events do not carry, one insert for all the rows."""
    shipments = [e for e, _ in events if isinstance(e, (ShipmentBooked, ShipmentProgressed))]
    # a pickup's events come before its dossier exists: those have no timeline yet
    codes = (
        dict(
            await conn.fetch(
                "SELECT dossier_id, code FROM dossiers WHERE dossier_id = ANY($1::uuid[])",
                list({e.dossier_id for e in shipments}),
            )
        )
        if shipments
        else {}
    )
    wanted = [
        (e.dossier_id, getattr(e, "step_index"))
        for e, _ in events
        if isinstance(e, DossierEvent)
        and getattr(e, "step_index", None) is not None
        and getattr(e, "step_due_at", None) is None
    ]
    step_dues = (
        {
            (r["dossier_id"], r["idx"]): r["due_at"]
            for r in await conn.fetch(
                "SELECT s.dossier_id, s.idx, s.due_at FROM steps s JOIN unnest($1::uuid[], $2::int[]) AS w(dossier_id, idx) "
                "ON s.dossier_id = w.dossier_id AND s.idx = w.idx",
                [w[0] for w in wanted],
                [w[1] for w in wanted],
            )
        }
        if wanted
        else {}
    )
    rows: list[tuple] = []
    for event, envelope in events:
        trace_id = trace_id_of(envelope.traceparent)
        if isinstance(event, (ShipmentBooked, ShipmentProgressed)):
            if event.dossier_id not in codes:
                continue
            reason = getattr(event, "reason", None)
            what = f"Bưu điện: {event.kind} {getattr(event, 'status', 'booked')}" + (f" ({reason})" if reason else "")
            rows.append(
                (
                    envelope.id,
                    event.dossier_id,
                    codes[event.dossier_id],
                    envelope.type,
                    event.at,
                    envelope.source,
                    None,
                    None,
                    None,
                    None,
                    trace_id,
                    what,
                )
            )
        elif isinstance(event, DossierEvent):
            step_index = getattr(event, "step_index", None)
            step_due = getattr(event, "step_due_at", None) or step_dues.get((event.dossier_id, step_index))
            rows.append(
                (
                    envelope.id,
                    event.dossier_id,
                    event.dossier_code,
                    envelope.type,
                    event.at,
                    envelope.source,
                    getattr(event, "agency_code", None) or getattr(event, "to_agency", None),
                    step_index,
                    step_due,
                    _late(event, step_due),
                    trace_id,
                    summarise(event),
                )
            )
    if rows:
        await conn.execute(
            "INSERT INTO timeline (event_id, dossier_id, dossier_code, event_type, at, source, agency_code, step_index, "
            "step_due_at, late, trace_id, summary) SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], "
            "$5::timestamptz[], $6::text[], $7::text[], $8::int[], $9::timestamptz[], $10::boolean[], $11::text[], $12::text[]) "
            "ON CONFLICT DO NOTHING",
            *map(list, zip(*rows)),
        )


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


async def delivered_by_post(event: ShipmentProgressed, conn, *, outbox: Outbox, ref: Reference) -> None:
    """The post delivered the result: the dossier is returned. A failed delivery leaves the
    return step with the receiving agency, so the citizen collects it at the counter."""
    if event.kind != "delivery" or event.status != "delivered":
        return
    d = await store.load(conn, ref.catalogue.agencies, dossier_id=event.dossier_id)
    if d is None or d.status != "resolved":
        return
    events = d.return_result(d.step.agency_code, "postal", Actor(name="Bưu điện", title="BCCI"), event.at)
    await store.save(conn, [d])
    await outbox.add_all(conn, events)


# ------------------------------------------------------------------ documents sent for a dossier


async def document_sent(event: DocumentSent, envelope: Envelope, conn, *, now: datetime) -> None:
    """A document sent about a dossier (a commune asking the district, a decision): kept, so an
    approval can name it, and put on the dossier's timeline and in its trace."""
    if event.dossier_code is None:
        return
    d = await conn.fetchrow(
        "SELECT dossier_id, code, traceparent, (receiving_agency = $2 OR EXISTS (SELECT 1 FROM steps s "
        "  WHERE s.dossier_id = d.dossier_id AND s.agency_code = $2)) AS sender_on_route "
        "FROM dossiers d WHERE code = $1",
        event.dossier_code,
        event.sender_agency,
    )
    if d is None:
        log.info("routing.document_for_unknown_dossier document=%s", event.document_id)
        return
    if not d["sender_on_route"]:
        # Only an agency the dossier passes through may attach a document to it; the document
        # itself still reaches its recipients, it is just not the dossier's.
        raise Rejected(
            f"document {event.number} names dossier {event.dossier_code}, but its sender "
            f"{event.sender_agency} is not on that dossier's route: not linked"
        )
    await conn.execute(
        "INSERT INTO dossier_documents (document_id, dossier_id, sender_agency, number, doc_type, version, sha256, size, "
        "state, sent_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'checking', $9, $10) "
        "ON CONFLICT (document_id) DO UPDATE SET version = EXCLUDED.version, sha256 = EXCLUDED.sha256, size = EXCLUDED.size, "
        "state = 'checking', reason = NULL, updated_at = EXCLUDED.updated_at "
        "WHERE dossier_documents.version < EXCLUDED.version",
        event.document_id,
        d["dossier_id"],
        event.sender_agency,
        event.number,
        event.doc_type,
        event.version,
        event.file.sha256,
        event.file.size,
        event.at,
        now,
    )
    with in_dossier_trace(d["traceparent"], "routing document for dossier", link_here=True):
        await _timeline_entry(
            conn,
            envelope,
            d["dossier_id"],
            d["code"],
            event.at,
            summarise_document(event, event.number),
            event.sender_agency,
        )


async def document_status_changed(event: DocumentStatusChanged, envelope: Envelope, conn, *, now: datetime) -> None:
    """A copy of a dossier's document moved: its arrival means both signatures checked out, a
    refusal by the check (no official's name on it) that they did not; either way the
    dossier's timeline shows it."""
    doc = await conn.fetchrow(
        "SELECT x.*, d.code, d.traceparent FROM dossier_documents x JOIN dossiers d USING (dossier_id) "
        "WHERE x.document_id = $1",
        event.document_id,
    )
    if doc is None or event.version < doc["version"]:
        return
    state = document_state_after(doc["state"], event.status, checked_by_platform=event.by is None)
    if state != doc["state"]:
        await conn.execute(
            "UPDATE dossier_documents SET state = $2, reason = $3, updated_at = $4 WHERE document_id = $1",
            event.document_id,
            state,
            event.reason,
            now,
        )
    with in_dossier_trace(doc["traceparent"], "routing document status for dossier", link_here=True):
        await _timeline_entry(
            conn,
            envelope,
            doc["dossier_id"],
            doc["code"],
            event.at,
            summarise_document(event, doc["number"]),
            event.recipient_agency,
        )


def register(consumer: EventConsumer, outbox: Outbox, ref: Reference, clock: Clock) -> None:
    @consumer.on(DossierReceived)
    async def dossier_received(event, envelope, conn):
        await start_workflow(event, conn, outbox=outbox, ref=ref, now=clock.now())

    @consumer.on(DossierSupplemented)
    async def dossier_supplemented(event, envelope, conn):
        await resume_after_supplement(event, conn, outbox=outbox, ref=ref, now=clock.now())

    @consumer.on(ShipmentProgressed)
    async def shipment_progressed(event, envelope, conn):
        await delivered_by_post(event, conn, outbox=outbox, ref=ref)

    @consumer.on(DocumentSent)
    async def on_document_sent(event, envelope, conn):
        await document_sent(event, envelope, conn, now=clock.now())

    @consumer.on(DocumentStatusChanged)
    async def on_document_status_changed(event, envelope, conn):
        await document_status_changed(event, envelope, conn, now=clock.now())

    consumer.on_every_batch(record_timeline)
