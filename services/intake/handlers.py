"""Intake's use cases. Each takes a command and its dependencies and writes its state change
and the events it emits in one transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime

import asyncpg

from services.intake import domain, files, payments, portal
from services.intake import population as identity
from services.intake.checks import check_receipt
from services.intake.population import PopulationClient
from services.intake.schemas import (
    CitizenLookupOut,
    DossierOut,
    HistoryEntry,
    RateDossier,
    RatingOut,
    ReasonOut,
    RefusalOut,
    SubmitDossier,
    SupplementDossier,
)
from services.intake.settings import IntakeSettings
from shared import dossier_files
from shared.dossier_text import local_text, summarise
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import (
    Applicant,
    Contact,
    DocumentRef,
    DossierApologised,
    DossierAssigned,
    DossierEvent,
    DossierOverdue,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierResumed,
    DossierReturned,
    DossierStopped,
    DossierSupplemented,
    DossierSupplementRequested,
    DossierWithdrawn,
    Envelope,
    EventData,
    PickupRequested,
    ShipmentProgressed,
    Withdraw,
)
from shared.outbox import Outbox
from shared.personal_data import PersonalDataKeys
from shared.reference import Reference
from shared.telemetry import current_trace_headers, current_trace_id

_COLUMNS = (
    "id, code, procedure_code, procedure_name, agency_code, channel, status, outcome, current_step, "
    "current_agency, received_at, due_at, overdue, trace_id, identity_status, identity_prefilled"
)
_COLUMN_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))


class IdempotencyKeyReused(Unprocessable):
    """The Idempotency-Key was first used for a different request."""

    errors = ({"field": "Idempotency-Key", "reason": "used for a different request"},)

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used for a different request; "
            "use a new key for a new request, or resend the first request unchanged"
        )


def fingerprint(cmd: SubmitDossier) -> str:
    """What identifies a request under its Idempotency-Key: the command as parsed, so the
    order of JSON keys or white space does not matter, but any value does."""
    return hashlib.sha256(cmd.model_dump_json().encode("utf-8")).hexdigest()


def _same_request(row_hash: str | None, request_hash: str) -> None:
    if row_hash is not None and row_hash != request_hash:
        raise IdempotencyKeyReused()


def sealed_applicant(cmd: SubmitDossier, pd: PersonalDataKeys) -> Applicant:
    """The applicant as intake keeps and publishes them: ID and phone numbers sealed."""
    a = cmd.applicant
    return Applicant(
        **{**a.model_dump(), "id_number": pd.seal(a.id_number, "id_number"), "phone": pd.seal(a.phone, "phone")}
    )


def sealed_command(cmd: SubmitDossier, pd: PersonalDataKeys) -> str:
    """A submission kept for later (a pickup), its applicant's ID and phone numbers sealed."""
    body = json.loads(cmd.model_dump_json())
    body["applicant"].update(
        id_number=pd.seal(cmd.applicant.id_number, "id_number"), phone=pd.seal(cmd.applicant.phone, "phone")
    )
    return json.dumps(body, ensure_ascii=False)


def opened_command(text: str, pd: PersonalDataKeys) -> SubmitDossier:
    body = json.loads(text)
    applicant = body["applicant"]
    applicant.update(id_number=pd.open(applicant["id_number"], "id_number"), phone=pd.open(applicant["phone"], "phone"))
    return SubmitDossier.model_validate(body)


async def submit_dossier(
    cmd: SubmitDossier,
    *,
    pool: asyncpg.Pool,
    outbox: Outbox,
    ref: Reference,
    settings: IntakeSettings,
    idempotency_key: str | None,
    now: datetime,
    submitted_by: str | None = None,
    may_backdate: bool = False,
    population: PopulationClient | None = None,
) -> tuple[DossierOut | RefusalOut, bool]:
    """Receive or refuse a submission; returns the outcome and whether it is new (False: a retry).
    ``submitted_by`` is the connected system that sent it (the token's client); ``may_backdate``
    says it is the receiving agency's counter (see checks.check_receipt). ``population``: the
    national population database, asked (outside any transaction, for a bounded time) about the
    applicant of a procedure connected to it."""
    request_hash = fingerprint(cmd)
    procedure, reasons = check_receipt(cmd, ref, now, settings.backdate_max_days, may_backdate)
    verdict = None
    if population is not None and procedure is not None and procedure.population_check and not reasons:
        a = cmd.applicant
        verdict = await population.verify(a.id_number, a.full_name, a.date_of_birth)
        reasons = reasons + identity.refusal_reasons(verdict)
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():  # one transaction: the retry check, and the receipt or refusal
                if idempotency_key and (earlier := await _by_idempotency_key(conn, idempotency_key, request_hash)):
                    return earlier, False
                documents, file_reasons = await _resolve_files(conn, cmd, settings, submitted_by)
                if reasons or file_reasons:
                    return await _refuse(
                        conn,
                        outbox,
                        cmd,
                        reasons + file_reasons,
                        idempotency_key,
                        now,
                        settings.personal_data,
                        request_hash,
                    ), True
                return await _receive(
                    conn,
                    outbox,
                    ref,
                    cmd,
                    procedure,
                    idempotency_key,
                    now,
                    settings.personal_data,
                    request_hash=request_hash,
                    submitted_by=submitted_by,
                    documents=documents,
                    verdict=verdict,
                    population_connected=population is not None,
                    payment_connected=bool(settings.payment_url),
                ), True
        except asyncpg.UniqueViolationError:
            # The same key raced in from a concurrent retry: answer with the winner's outcome.
            earlier = await _by_idempotency_key(conn, idempotency_key, request_hash) if idempotency_key else None
            if earlier is None:
                raise
            return earlier, False


async def _resolve_files(conn, cmd: SubmitDossier, settings: IntakeSettings, submitted_by: str | None):
    """The submission's files as they will be bound, and the reasons to refuse them."""
    return await files.resolve(
        conn,
        cmd.documents,
        cmd.channel.value,
        submitted_by,
        settings.personal_data.lookup_hash(cmd.applicant.id_number),
        settings.dossier_max_bytes,
    )


async def _by_idempotency_key(conn: asyncpg.Connection, key: str, request_hash: str) -> DossierOut | RefusalOut | None:
    """The outcome of an earlier submission with this key: a dossier or a refusal (one read)."""
    row = await conn.fetchrow(
        f"SELECT (SELECT d FROM (SELECT {_COLUMNS}, request_hash FROM dossiers WHERE idempotency_key = $1) d) AS dossier, "
        "(SELECT r FROM (SELECT id, reasons, request_hash FROM refusals WHERE idempotency_key = $1) r) AS refusal",
        key,
    )
    if row["dossier"] is not None:
        *columns, earlier_hash = row["dossier"]
        _same_request(earlier_hash, request_hash)
        return DossierOut(**dict(zip(_COLUMN_NAMES, columns)))
    if row["refusal"] is not None:
        refusal_id, reasons, earlier_hash = row["refusal"]
        _same_request(earlier_hash, request_hash)
        return RefusalOut(refusal_id=refusal_id, reasons=[ReasonOut(**r) for r in json.loads(reasons)])
    return None


async def _refuse(
    conn,
    outbox: Outbox,
    cmd: SubmitDossier,
    reasons,
    idempotency_key,
    now,
    pd: PersonalDataKeys,
    request_hash: str | None = None,
) -> RefusalOut:
    refusal_id = uuid.uuid4()
    contact = Contact(
        full_name=cmd.applicant.full_name, phone=pd.seal(cmd.applicant.phone, "phone"), email=cmd.applicant.email
    )
    await conn.execute(
        "INSERT INTO refusals (id, procedure_code, agency_code, channel, contact, reasons, refused_at, idempotency_key, "
        "request_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        refusal_id,
        cmd.procedure_code,
        cmd.agency_code,
        cmd.channel.value,
        contact.model_dump_json(),
        json.dumps([r.model_dump() for r in reasons], ensure_ascii=False),
        now,
        idempotency_key,
        request_hash,
    )
    await outbox.add(
        conn,
        DossierRefused(
            refusal_id=refusal_id,
            procedure_code=cmd.procedure_code,
            agency_code=cmd.agency_code,
            channel=cmd.channel.value,
            contact=contact,
            reasons=tuple(reasons),
            at=now,
        ),
    )
    return RefusalOut(refusal_id=refusal_id, reasons=[ReasonOut(**r.model_dump()) for r in reasons])


async def _receive(
    conn,
    outbox: Outbox,
    ref: Reference,
    cmd: SubmitDossier,
    procedure,
    idempotency_key,
    now,
    pd: PersonalDataKeys,
    dossier_id: uuid.UUID | None = None,
    request_hash: str | None = None,
    submitted_by: str | None = None,
    documents: list[DocumentRef] | None = None,
    verdict: identity.Verdict | None = None,
    population_connected: bool = False,
    payment_connected: bool = False,
) -> DossierOut:
    """``documents``: the components as ``files.resolve`` bound them (sizes, types and reused
    results filled in). ``verdict``: the population database's answer on the applicant (None:
    not asked; a procedure connected to it is then checked in the background)."""
    documents = cmd.documents if documents is None else documents
    received_at = cmd.received_at or now
    day = domain.local_day(received_at)
    # One row per agency and day, incremented atomically: concurrent submissions get distinct numbers.
    sequence = await conn.fetchval(
        "INSERT INTO daily_sequences (agency_code, day, last_value) VALUES ($1, $2, 1) "
        "ON CONFLICT (agency_code, day) DO UPDATE SET last_value = daily_sequences.last_value + 1 "
        "RETURNING last_value",
        cmd.agency_code,
        day,
    )
    due_at = ref.calendar.due_at(received_at, procedure.time_limit_days)
    applicant = sealed_applicant(cmd, pd)
    lookup_key = domain.new_lookup_key()
    # an online dossier with a fee waits for its payment before anyone processes it
    awaiting_payment = payment_connected and cmd.channel.value == "online" and bool(procedure.fee_vnd)
    dossier = DossierOut(
        id=dossier_id or uuid.uuid4(),
        code=domain.dossier_code(cmd.agency_code, day, sequence),
        procedure_code=procedure.code,
        procedure_name=procedure.name,
        agency_code=cmd.agency_code,
        channel=cmd.channel,
        status="awaiting_payment" if awaiting_payment else "received",
        received_at=received_at,
        due_at=due_at,
        trace_id=current_trace_id(),
        lookup_key=lookup_key,
    )
    checks = population_connected and procedure.population_check
    identity_status, from_db, prefilled = identity.at_receipt(verdict, checks, cmd.applicant.date_of_birth, pd)
    dossier.identity_status, dossier.identity_prefilled = identity_status, prefilled
    await conn.execute(
        "INSERT INTO dossiers (id, code, procedure_code, procedure_name, agency_code, channel, applicant, documents, "
        "result_delivery, status, received_at, due_at, legal_due_at, idempotency_key, trace_id, updated_at, request_hash, "
        "submitted_by, lookup_key, applicant_key, identity_status, identity_checked_at, identity_birth_date, "
        "identity_from_db, identity_prefilled) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17, $18, $19, "
        "$20, $21, $22, $23, $24)",
        dossier.id,
        dossier.code,
        procedure.code,
        procedure.name,
        cmd.agency_code,
        cmd.channel.value,
        applicant.model_dump_json(),
        json.dumps([d.model_dump(mode="json") for d in documents], ensure_ascii=False),
        cmd.result_delivery.value,
        dossier.status,
        received_at,
        due_at,
        idempotency_key,
        dossier.trace_id,
        now,
        request_hash,
        submitted_by,
        pd.seal(lookup_key, "lookup_key"),
        pd.lookup_hash(cmd.applicant.id_number),
        identity_status,
        now if verdict is not None else None,
        pd.seal(cmd.applicant.date_of_birth.isoformat() if cmd.applicant.date_of_birth else None, "date_of_birth"),
        from_db,
        prefilled,
    )
    await dossier_files.bind(conn, dossier.id, documents, "component", now)
    received = DossierReceived(
        dossier_id=dossier.id,
        dossier_code=dossier.code,
        at=received_at,
        procedure_code=procedure.code,
        procedure_name=procedure.name,
        agency_code=cmd.agency_code,
        channel=cmd.channel.value,
        applicant=applicant,
        documents=tuple(documents),
        result_delivery=cmd.result_delivery.value,
        due_at=due_at,
        notify_via=tuple(c.value for c in cmd.notify_via),
    )
    if awaiting_payment:
        await conn.execute(
            "INSERT INTO payments (dossier_id, amount_vnd, status, received_event, created_at, traceparent) "
            "VALUES ($1, $2, 'creating', $3, $4, $5)",
            dossier.id,
            procedure.fee_vnd,
            received.model_dump_json(),
            now,
            current_trace_headers().get("traceparent"),
        )
        dossier.payment_status = "creating"
        await payments.on_timeline(conn, dossier.id, "requested", now, procedure.fee_vnd or 0)
        row = await conn.fetchrow("SELECT * FROM dossiers WHERE id = $1", dossier.id)
        await portal.queue_update(conn, row, ref, now, now)  # status 6: financial obligation
    else:
        await outbox.add(conn, received)
    return dossier


async def request_pickup(
    cmd: SubmitDossier,
    *,
    pool: asyncpg.Pool,
    outbox: Outbox,
    ref: Reference,
    settings: IntakeSettings,
    idempotency_key: str | None,
    now: datetime,
    submitted_by: str | None = None,
) -> tuple[uuid.UUID | RefusalOut, bool]:
    """The citizen asks the post to collect the dossier: checked now, received on arrival."""
    request_hash = fingerprint(cmd)

    async def earlier_pickup(conn) -> uuid.UUID | None:
        row = await conn.fetchrow(
            "SELECT dossier_id, request_hash FROM pickups WHERE idempotency_key = $1", idempotency_key
        )
        if row is None:
            return None
        _same_request(row["request_hash"], request_hash)
        return row["dossier_id"]

    async with pool.acquire() as conn:
        if idempotency_key and (earlier := await earlier_pickup(conn)):
            return earlier, False
        _, reasons = check_receipt(cmd, ref, now, settings.backdate_max_days)
        try:
            async with conn.transaction():
                if reasons:
                    return await _refuse(conn, outbox, cmd, reasons, None, now, settings.personal_data), True
                pickup_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO pickups (dossier_id, command, status, requested_at, idempotency_key, request_hash, "
                    "submitted_by) VALUES ($1, $2, 'requested', $3, $4, $5, $6)",
                    pickup_id,
                    sealed_command(cmd, settings.personal_data),
                    now,
                    idempotency_key,
                    request_hash,
                    submitted_by,
                )
                await outbox.add(
                    conn,
                    PickupRequested(
                        dossier_id=pickup_id,
                        at=now,
                        procedure_code=cmd.procedure_code,
                        agency_code=cmd.agency_code,
                        applicant=sealed_applicant(cmd, settings.personal_data),
                        documents=tuple(cmd.documents),
                        result_delivery=cmd.result_delivery.value,
                        notify_via=tuple(c.value for c in cmd.notify_via),
                    ),
                )
                return pickup_id, True
        except asyncpg.UniqueViolationError:
            # the same key raced in from a concurrent retry: answer with the winner's pickup
            earlier = await earlier_pickup(conn) if idempotency_key else None
            if earlier is None:
                raise
            return earlier, False


async def follow_shipment(
    event: ShipmentProgressed, conn: asyncpg.Connection, *, outbox: Outbox, ref: Reference, settings: IntakeSettings
) -> None:
    """The post handed the package to the counter: the dossier is received (or refused) now.
    The post handed the result to the citizen: the dossier's result was carried by post."""
    if event.kind == "delivery" and event.status == "delivered":
        await conn.execute(
            "UPDATE dossiers SET result_delivered_by_post_at = $2 WHERE id = $1 AND result_delivered_by_post_at IS NULL",
            event.dossier_id,
            event.at,
        )
        return
    if event.kind != "pickup" or event.status != "delivered":
        return
    pickup = await conn.fetchrow("SELECT * FROM pickups WHERE dossier_id = $1 FOR UPDATE", event.dossier_id)
    if pickup is None or pickup["status"] != "requested":
        return
    cmd = opened_command(pickup["command"], settings.personal_data)
    procedure, reasons = check_receipt(cmd, ref, event.at, settings.backdate_max_days)
    documents, file_reasons = await _resolve_files(conn, cmd, settings, pickup["submitted_by"])
    reasons += file_reasons
    if reasons:
        await _refuse(conn, outbox, cmd, reasons, None, event.at, settings.personal_data)
        status = "refused"
    else:
        await _receive(
            conn,
            outbox,
            ref,
            cmd,
            procedure,
            None,
            event.at,
            settings.personal_data,
            dossier_id=event.dossier_id,
            submitted_by=pickup["submitted_by"],
            documents=documents,
            population_connected=bool(settings.population_url),  # checked in the background
        )
        status = "received"
    await conn.execute("UPDATE pickups SET status = $2 WHERE dossier_id = $1", event.dossier_id, status)


async def supplement_dossier(
    code: str,
    cmd: SupplementDossier,
    *,
    pool: asyncpg.Pool,
    outbox: Outbox,
    now: datetime,
    settings: IntakeSettings,
    uploaded_by: str,
) -> DossierOut:
    """The documents a supplement request asked for, their files checked and bound as at receipt."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {_COLUMNS}, applicant_key FROM dossiers WHERE code = $1 FOR UPDATE", code)
        if row is None:
            raise NotFound(f"no dossier with code {code!r}")
        if row["status"] != "supplement_requested":
            raise Conflict(f"dossier {code} is '{row['status']}': no supplement was requested")
        documents, reasons = await files.resolve(
            conn, cmd.documents, row["channel"], uploaded_by, row["applicant_key"], settings.dossier_max_bytes
        )
        if reasons:
            raise Unprocessable(
                "the supplement's files cannot be bound: " + "; ".join(r.message for r in reasons),
                errors=[{"field": "documents", "reason": r.code} for r in reasons],
            )
        await conn.execute(
            "UPDATE dossiers SET status = 'supplemented', documents = documents || $2::jsonb, updated_at = $3 WHERE id = $1",
            row["id"],
            json.dumps([d.model_dump(mode="json") for d in documents], ensure_ascii=False),
            now,
        )
        await dossier_files.bind(conn, row["id"], documents, "supplement", now)
        await outbox.add(
            conn, DossierSupplemented(dossier_id=row["id"], dossier_code=code, at=now, documents=tuple(documents))
        )
        return await _dossier_view(conn, code)


async def withdraw_awaiting_payment(
    code: str, cmd: Withdraw, *, pool: asyncpg.Pool, outbox: Outbox, now: datetime
) -> DossierOut:
    """The citizen withdraws a dossier still waiting for its fee. Routing never had it, so
    intake ends it and says so (``DossierWithdrawn``: the timeline, the portal, the citizen's
    message); the worker cancels the payment order, or refunds it if paid in the meantime."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT id, status FROM dossiers WHERE code = $1", code)
        if row is None:
            raise NotFound(f"no dossier with code {code!r}")
        if row["status"] != "awaiting_payment" or not await payments.cancel_unpaid(conn, row["id"]):
            raise Conflict(
                f"dossier {code} is not waiting for its payment: routing has it, withdraw it there "
                "(routing's POST /v1/dossiers/{code}/withdraw)",
                errors=[{"field": "status", "reason": "not_awaiting_payment"}],
            )
        await conn.execute(
            "UPDATE dossiers SET status = 'withdrawn', updated_at = $2 WHERE id = $1 AND status = 'awaiting_payment'",
            row["id"],
            now,
        )
        await outbox.add(
            conn, DossierWithdrawn(dossier_id=row["id"], dossier_code=code, at=now, reasons=tuple(cmd.reasons))
        )
        return await _dossier_view(conn, code)


async def get_dossier(code: str, *, pool: asyncpg.Pool) -> DossierOut:
    async with pool.acquire() as conn, conn.transaction(readonly=True):  # one snapshot, one commit
        return await _dossier_view(conn, code)


async def _dossier_view(conn: asyncpg.Connection, code: str) -> DossierOut:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM dossiers WHERE code = $1", code)
    if row is None:
        raise NotFound(f"no dossier with code {code!r}")
    history = await conn.fetch(
        "SELECT at, event_type, agency_code, summary FROM dossier_history WHERE dossier_id = $1 ORDER BY at, seq",
        row["id"],
    )
    paid = await conn.fetchrow(
        "SELECT status, pay_url, receipt_no, amount_vnd FROM payments WHERE dossier_id = $1", row["id"]
    )
    return DossierOut(
        **dict(row),
        payment_status=paid["status"] if paid else None,
        pay_url=paid["pay_url"] if paid and paid["status"] == "pending" else None,
        receipt_no=paid["receipt_no"] if paid else None,
        fee_vnd=paid["amount_vnd"] if paid else None,
        history=[
            HistoryEntry(
                at=h["at"],
                event=h["event_type"].removeprefix("vn.lgsp.dossier.").removesuffix(".v1"),
                agency_code=h["agency_code"],
                summary=h["summary"],
            )
            for h in history
        ],
    )


def _require_key(row: asyncpg.Record | None, key: str, pd: PersonalDataKeys) -> None:
    """The slip's lookup key matches the dossier's; NotFound alike for an unknown code and a
    wrong key, so neither can be probed."""
    expected = pd.open(row["lookup_key"], "lookup_key") if row is not None and row["lookup_key"] else None
    if expected is None or not hmac.compare_digest(expected.encode(), key.strip().upper().encode()):
        raise NotFound("no dossier with that code and lookup key")


async def citizen_lookup(code: str, key: str, *, pool: asyncpg.Pool, pd: PersonalDataKeys) -> CitizenLookupOut:
    """A dossier's progress for whoever holds its code and lookup key; NotFound alike for an
    unknown code and a wrong key, so neither can be probed."""
    row = await pool.fetchrow(
        "SELECT code, procedure_name, status, outcome, received_at, due_at, overdue, lookup_key "
        "FROM dossiers WHERE code = $1",
        code,
    )
    _require_key(row, key, pd)
    return CitizenLookupOut(**{k: v for k, v in row.items() if k != "lookup_key"})


RATED_AFTER = ("resolved", "returned")  # a rating is of how the dossier was handled: after its result
# Runs of 9 or more digits (an ID number has 12, a phone 10), with spaces, dots or dashes between
# them, and e-mail addresses: masked in a comment before it is kept.
_NUMBER = re.compile(r"\+?\d(?:[\s.\-]?\d){8,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def masked_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    text = _EMAIL.sub("[…]", _NUMBER.sub("[…]", comment)).strip()
    return text or None


async def rate_dossier(
    code: str,
    cmd: RateDossier,
    *,
    source: str,
    rated_by: str,
    pool: asyncpg.Pool,
    now: datetime,
    pd: PersonalDataKeys,
    key: str | None = None,
) -> RatingOut:
    """Keep a rating of the dossier, once its result is out. From the lookup route the citizen
    shows the slip's key (a wrong key and an unknown code get the same 404); the counter's
    device is let in by the access policy for its own agency's dossiers."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT id, status, lookup_key FROM dossiers WHERE code = $1 FOR UPDATE", code)
        if key is not None:
            _require_key(row, key, pd)
        elif row is None:
            raise NotFound(f"no dossier {code}")
        if row["status"] not in RATED_AFTER:
            raise Conflict(
                "a dossier is rated once its result is out",
                errors=[{"field": "rating", "reason": f"dossier is {row['status']}"}],
            )
        rated = await conn.fetchrow(
            "INSERT INTO ratings (dossier_id, rating, comment, source, rated_by, at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (dossier_id) DO NOTHING RETURNING rating, source, at",
            row["id"],
            cmd.rating.value,
            masked_comment(cmd.comment),
            source,
            rated_by,
            now,
        )
        if rated is None:
            raise Conflict("this dossier has been rated already", errors=[{"field": "rating", "reason": "rated"}])
    return RatingOut(code=code, **rated)


async def appointment_slip(code: str, *, pool: asyncpg.Pool, ref: Reference, pd: PersonalDataKeys) -> dict:
    """Giấy tiếp nhận hồ sơ và hẹn trả kết quả, as JSON."""
    row = await pool.fetchrow(
        "SELECT code, procedure_code, procedure_name, agency_code, channel, applicant, documents, result_delivery, "
        "received_at, due_at, lookup_key FROM dossiers WHERE code = $1",
        code,
    )
    if row is None:
        raise NotFound(f"no dossier with code {code!r}")
    agency = ref.catalogue.agencies.get(row["agency_code"])
    applicant = json.loads(row["applicant"])
    return {
        "title": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
        "dossier_code": row["code"],
        "agency": {"code": row["agency_code"], "name": agency.name if agency else row["agency_code"]},
        "procedure": {"code": row["procedure_code"], "name": row["procedure_name"]},
        "applicant_name": applicant["full_name"],
        "channel": row["channel"],
        "documents": [d["name"] for d in json.loads(row["documents"])],
        "received_at": local_text(row["received_at"]),
        "due_at": local_text(row["due_at"]),
        "result_delivery": row["result_delivery"],
        "lookup_key": pd.open(row["lookup_key"], "lookup_key"),  # Mã tra cứu: with the code, the citizen's own lookup
    }


# ------------------------------------------------------------------ routing's events


async def follow_dossier(
    event: EventData,
    envelope: Envelope,
    conn: asyncpg.Connection,
    *,
    ref: Reference,
    now: datetime,
    retention_days: int = 3650,
) -> None:
    """Every dossier event: update the status view, keep the result's file with the dossier
    (and from when its files' retention counts), and queue what the national portal must be
    told."""
    if not isinstance(event, DossierEvent):
        return
    changes = status_changes(event)
    if not changes and not isinstance(event, DossierReceived):
        return
    values = {k: v for k, v in changes.items() if not isinstance(v, Increment)}
    sets = [f"{column} = ${i}" for i, column in enumerate(values, start=3)]
    sets += [f"{column} = {column} + 1" for column, v in changes.items() if isinstance(v, Increment)]
    d = await conn.fetchrow(
        f"UPDATE dossiers SET {', '.join(['updated_at = $2', *sets])} WHERE id = $1 RETURNING *",
        event.dossier_id,
        event.at,
        *values.values(),
    )
    if d is None:  # not a dossier intake received (e.g. from another deployment)
        return
    await follow_steps(conn, event)
    if isinstance(event, DossierWithdrawn) or (isinstance(event, DossierResolved) and event.outcome == "refused"):
        await payments.refund_if_paid(conn, event.dossier_id)
    if isinstance(event, DossierResolved) and event.result_document is not None:
        await dossier_files.bind(conn, event.dossier_id, [event.result_document], "result", event.at)
    if d["status"] in files.FINISHED and d["files_kept_until"] is None:
        await conn.execute(
            "UPDATE dossiers SET files_kept_until = $2 WHERE id = $1",
            event.dossier_id,
            files.keep_until(event.at, retention_days),
        )
    await portal.queue_update(conn, d, ref, event.at, now)


async def follow_steps(conn: asyncpg.Connection, event: DossierEvent) -> None:
    """Keep the dossier's steps as routing assigns and ends them: who held which step, its own
    deadline and when it ended (the report charges a late step to its agency)."""
    match event:
        case DossierAssigned():
            await conn.execute(
                "UPDATE dossier_steps SET finished_at = $2 WHERE dossier_id = $1 AND finished_at IS NULL AND idx <> $3",
                event.dossier_id,
                event.at,
                event.step_index,
            )
            await conn.execute(
                "INSERT INTO dossier_steps (dossier_id, idx, name, kind, level, agency_code, due_at, assigned_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dossier_id, idx) DO UPDATE SET "
                "agency_code = EXCLUDED.agency_code, due_at = EXCLUDED.due_at, finished_at = NULL",
                event.dossier_id,
                event.step_index,
                event.step_name,
                event.step_kind,
                event.level,
                event.agency_code,
                event.step_due_at,
                event.at,
            )
        case DossierResumed():
            await conn.execute(
                "UPDATE dossier_steps SET due_at = $3 WHERE dossier_id = $1 AND idx = $2",
                event.dossier_id,
                event.step_index,
                event.step_due_at,
            )
        case DossierResolved() | DossierReturned() | DossierWithdrawn() | DossierStopped():
            await conn.execute(
                "UPDATE dossier_steps SET finished_at = $2 WHERE dossier_id = $1 AND finished_at IS NULL",
                event.dossier_id,
                event.at,
            )


async def record_history(events: list[tuple[EventData, Envelope]], conn: asyncpg.Connection) -> None:
    """Every dossier event of a batch, appended to its dossier's history in one statement
    (events of dossiers intake did not receive are left out)."""
    rows = [
        (
            envelope.id,
            event.dossier_id,
            envelope.type,
            event.at,
            getattr(event, "agency_code", None) or getattr(event, "to_agency", None),
            summarise(event),
        )
        for event, envelope in events
        if isinstance(event, DossierEvent)
    ]
    if rows:
        await conn.execute(
            "INSERT INTO dossier_history (event_id, dossier_id, event_type, at, agency_code, summary) "
            "SELECT h.* FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[]) "
            "  AS h(event_id, dossier_id, event_type, at, agency_code, summary) "
            "WHERE EXISTS (SELECT 1 FROM dossiers d WHERE d.id = h.dossier_id) ON CONFLICT DO NOTHING",
            *map(list, zip(*rows)),
        )


class Increment:
    """A counter column to add one to."""


def status_changes(event: DossierEvent) -> dict:
    """How one event changes intake's view of the dossier."""
    match event:
        case DossierAssigned(step_kind="return"):
            # the result waits to be returned: the dossier stays resolved
            return {"current_step": event.step_name, "current_agency": event.agency_code}
        case DossierAssigned():
            return {
                "status": "processing",
                "current_step": event.step_name,
                "current_agency": event.agency_code,
                "due_at": event.due_at,
            }
        case DossierSupplementRequested():
            return {"status": "supplement_requested"}
        case DossierResumed():
            return {"status": "processing", "due_at": event.due_at, "legal_due_at": event.due_at}
        case DossierResolved():
            return {
                "status": "resolved",
                "outcome": event.outcome,
                "resolved_at": event.at,
                "decided_by": event.actor.name,
            }
        case DossierReturned():
            return {"status": "returned", "current_step": None, "current_agency": None, "returned_at": event.at}
        case DossierWithdrawn():
            return {"status": "withdrawn", "current_step": None, "current_agency": None}
        case DossierStopped():
            return {"status": "stopped", "current_step": None, "current_agency": None}
        case DossierApologised():
            return {"due_at": event.new_due_at, "overdue": True, "apologies": Increment()}
        case DossierOverdue():
            return {"overdue": True}
    return {}
