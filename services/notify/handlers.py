"""Notify's use cases: plan the messages an event calls for (in the inbox transaction), and
send what is due (a worker). One row per (event, channel) makes each message go out once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.notify import rules
from services.notify.providers import ProviderError
from services.notify.settings import NotifySettings
from services.notify.templates import Message, compose, identity_unconfirmed, late_document
from shared.clock import Clock
from shared.events import (
    DocumentViewOverdue,
    DossierIdentityChecked,
    DossierReceived,
    DossierRefused,
    Envelope,
    EventData,
    PickupRequested,
)
from shared.personal_data import PersonalDataError
from shared.staff import StaffDirectory

log = logging.getLogger(__name__)
# A claimed message no other instance sends meanwhile: three times the longest a provider is
# given to answer (10 s), so a live call is never doubled, and one cut by a crash goes soon.
SEND_LEASE = timedelta(seconds=30)
# Sends in flight at once: a few hide the providers' latency; more would only grow the HTTP
# client's pool, whose every connection httpcore checks before each request.
SENDS_AT_ONCE = 8


async def plan_notifications(
    events: list[tuple[EventData, Envelope]], conn: asyncpg.Connection, *, settings: NotifySettings, now: datetime
) -> None:
    """The messages a batch of events calls for: who the citizens are (kept from their
    submissions), then one row per (event, channel), written with one statement each."""
    await _keep_recipients([e for e, _ in events if isinstance(e, (DossierReceived, PickupRequested))], conn)
    asked = list(
        {
            getattr(e, "dossier_id")
            for e, _ in events
            if getattr(e, "dossier_id", None) and not isinstance(e, DossierRefused)
        }
    )
    recipients = (
        {
            r["dossier_id"]: r
            for r in await conn.fetch("SELECT * FROM recipients WHERE dossier_id = ANY($1::uuid[])", asked)
        }
        if asked
        else {}
    )
    urgent_types = {t.strip() for t in settings.urgent_events.split(",") if t.strip()}
    pd = settings.personal_data
    rows = []
    for event, envelope in events:
        if isinstance(event, DossierRefused):
            dossier_id, code = event.refusal_id, None
            name, phone, email = event.contact.full_name, event.contact.phone, event.contact.email
            channels = ["sms", "zalo"] + (["email"] if email else [])
        else:
            r = recipients.get(getattr(event, "dossier_id", None))
            if r is None:
                continue  # nobody to tell (not a dossier this deployment received)
            dossier_id, name, phone, email, channels = (
                r["dossier_id"],
                r["full_name"],
                r["phone"],
                r["email"],
                r["channels"],
            )
            code = getattr(event, "dossier_code", None) or r["dossier_code"]
        message = compose(event, name, code, rating_url=settings.rating_url)
        if message is None:
            continue
        for position, channel in enumerate(channels):
            address = email if channel == "email" else phone  # the phone stays sealed; its hash finds it
            body = {"sms": message.sms, "zalo": message.zalo, "email": message.email}[channel]
            rows.append(
                (
                    uuid.uuid4(),
                    envelope.id,
                    dossier_id,
                    code,
                    envelope.type,
                    channel,
                    position,
                    address,
                    message.subject,
                    body,
                    "pending" if position == 0 else "standby",
                    envelope.type in urgent_types,
                    pd.lookup_hash(email if channel == "email" else pd.open(phone, "phone")),
                )
            )
    if rows:
        await conn.execute(
            "INSERT INTO notifications (id, event_id, dossier_id, dossier_code, event_type, channel, position, address, "
            "subject, body, status, urgent, address_hash, not_before, created_at) "
            "SELECT *, $14::timestamptz, $14::timestamptz FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], "
            "$5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::boolean[], $13::text[]) "
            "ON CONFLICT (event_id, channel) DO NOTHING",
            *map(list, zip(*rows)),
            now,
        )


async def _keep_recipients(submissions: list[DossierReceived | PickupRequested], conn: asyncpg.Connection) -> None:
    """Who to tell about each dossier: the first submission's contact; a later event may add
    the dossier's code (a pickup is asked for before the dossier has one)."""
    merged: dict = {}
    for e in submissions:
        a = e.applicant
        first = merged.setdefault(
            e.dossier_id,
            [e.dossier_id, None, a.full_name, a.phone, a.email, [c for c in e.notify_via if c != "email" or a.email]],
        )
        first[1] = getattr(e, "dossier_code", None) or first[1]
    if not merged:
        return
    columns = list(zip(*merged.values()))
    await conn.execute(
        "INSERT INTO recipients (dossier_id, dossier_code, full_name, phone, email, channels) "
        "SELECT r.dossier_id, r.dossier_code, r.full_name, r.phone, r.email, string_to_array(r.channels, ',') "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) "
        "  AS r(dossier_id, dossier_code, full_name, phone, email, channels) "
        "ON CONFLICT (dossier_id) DO UPDATE SET dossier_code = coalesce(EXCLUDED.dossier_code, recipients.dossier_code)",
        *map(list, columns[:5]),
        [",".join(c) for c in columns[5]],
    )  # channel names hold no comma


def staff_message(event: EventData, name_of: Callable[[str], str]) -> tuple[str, uuid.UUID, str, Message] | None:
    """What an event asks an agency's staff to look at: (agency, what it is about, its code or
    number, the message), or None when it asks nothing of them. ``name_of`` names an agency."""
    match event:
        case DocumentViewOverdue(recipient_agency=agency):
            message = late_document(event.number, event.urgency, name_of(agency), event.view_due_at)
            return agency, event.document_id, event.number, message
        case DossierIdentityChecked(outcome="failed", agency_code=agency):
            message = identity_unconfirmed(event.dossier_code, name_of(agency), event.mismatched)
            return agency, event.dossier_id, event.dossier_code, message
    return None


async def tell_staff(
    event: DocumentViewOverdue | DossierIdentityChecked,
    envelope: Envelope,
    conn: asyncpg.Connection,
    *,
    directory: StaffDirectory,
    name_of: Callable[[str], str],
    settings: NotifySettings,
    now: datetime,
) -> int:
    """An agency's staff must look at something (a document nobody opened in time, an applicant
    the population database did not confirm): its officials and its manager hear of it by
    e-mail (work mailboxes from the staff directory), each once."""
    asked = staff_message(event, name_of)
    if asked is None:
        return 0
    agency, about, number, message = asked
    addresses = directory.mailboxes(agency)
    pd = settings.personal_data
    for address in addresses:
        await conn.execute(
            "INSERT INTO notifications (id, event_id, dossier_id, dossier_code, event_type, channel, position, address, "
            "subject, body, status, urgent, not_before, created_at, address_hash) "
            "VALUES ($1, $2, $3, $4, $5, 'email', 0, $6, $7, $8, 'pending', false, $9, $9, $10) "
            "ON CONFLICT (event_id, channel) DO NOTHING",
            # one row per address: the event id is made unique per recipient so each goes once
            uuid.uuid4(),
            f"{envelope.id}#{address}",
            about,
            number,
            envelope.type,
            address,
            message.subject,
            message.email,
            now,
            pd.lookup_hash(address),
        )
    if not addresses:
        log.warning("notify.no_staff agency=%s: nobody to tell (%s)", agency, envelope.type)
    return len(addresses)


async def send_due(
    pool: asyncpg.Pool, providers: dict, settings: NotifySettings, clock: Clock, batch: int = 20
) -> dict[str, int]:
    """Send pending messages whose time has come. Safe with several notify instances (rows
    are claimed with SKIP LOCKED); a crash after a provider took a message resends it with
    the same idempotency key, which the provider ignores.

    Claim, commit, call, record: one transaction claims the rows (with what the rate limit
    needs to know), defers what quiet hours or the limit hold back, and leases the rest for
    ``SEND_LEASE``; the providers are called with no row locked, concurrently; one statement
    records every outcome. A message whose instance died mid-call goes again after the lease."""
    counts = {"sent": 0, "deferred": 0, "retry": 0, "failed": 0}
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT * FROM notifications WHERE status = 'pending' AND not_before <= $1 ORDER BY created_at "
            "LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            batch,
        )
        if not rows:
            return counts
        # per recipient, the times of its latest messages within the hour (at most `limit`)
        recent = {
            r["address_hash"]: list(r["sent"])
            for r in await conn.fetch(
                "SELECT h AS address_hash, ARRAY(SELECT sent_at FROM notifications WHERE address_hash = h AND status = 'sent' "
                "AND sent_at > $2 ORDER BY sent_at DESC LIMIT $3) AS sent FROM unnest($1::text[]) AS h",
                list({n["address_hash"] for n in rows} - {None}),
                now - timedelta(hours=1),
                settings.rate_limit_per_hour,
            )
        }
        outcomes: list[_Outcome] = []
        sending: list[tuple[asyncpg.Record, str]] = []
        for n in rows:
            later = rules.held_until(
                now,
                urgent=n["urgent"],
                quiet_hours=settings.quiet_hours,
                # (rows older than the address hash have no limit)
                recent=None if n["address_hash"] is None else recent.setdefault(n["address_hash"], []),
                limit_per_hour=settings.rate_limit_per_hour,
            )
            if later is not None:
                outcomes.append(_Outcome(n, "pending", n["attempts"], not_before=later))
                counts["deferred"] += 1
                continue
            try:
                address = (
                    n["address"] if n["channel"] == "email" else settings.personal_data.open(n["address"], "phone")
                )
                if not address:
                    raise PersonalDataError("the notification has no address")
            except PersonalDataError as exc:  # a key removed too early: nothing to send to, say so
                outcomes.append(_Outcome(n, "failed", n["attempts"], error=str(exc)))
                log.error("notify.unopenable id=%s %s", n["id"], exc)
                counts["failed"] += 1
                continue
            sending.append((n, address))
        if sending:
            await conn.execute(
                "UPDATE notifications SET not_before = $2 WHERE id = ANY($1::uuid[])",
                [n["id"] for n, _ in sending],
                now + SEND_LEASE,
            )
        await _record(conn, outcomes, now)

    at_once = asyncio.Semaphore(SENDS_AT_ONCE)

    async def attempt(n: asyncpg.Record, address: str) -> tuple[str | ProviderError, datetime]:
        """The provider's answer (its message id, or the error), and when it came."""
        try:
            async with at_once:
                return await providers[n["channel"]].send(str(n["id"]), address, n["subject"], n["body"]), clock.now()
        except ProviderError as exc:
            return exc, clock.now()

    answered: list[_Outcome] = []
    results = await asyncio.gather(*(attempt(n, address) for n, address in sending))
    for (n, _), (result, answered_at) in zip(sending, results):
        attempts = n["attempts"] + 1
        if not isinstance(result, ProviderError):
            answered.append(_Outcome(n, "sent", attempts, provider_id=result, sent_at=answered_at))
            log.info("notify.sent id=%s channel=%s type=%s", n["id"], n["channel"], n["event_type"])
            counts["sent"] += 1
        elif (again := rules.after_refusal(attempts, now)) is None:
            answered.append(_Outcome(n, "failed", attempts, error=str(result)))
            log.warning("notify.channel_failed id=%s channel=%s error=%s", n["id"], n["channel"], result)
            counts["failed"] += 1
        else:
            answered.append(_Outcome(n, "pending", attempts, error=str(result), not_before=again))
            counts["retry"] += 1
    async with pool.acquire() as conn:
        await _record(conn, answered, now)
    return counts


@dataclass(frozen=True)
class _Outcome:
    row: asyncpg.Record
    status: str  # pending (deferred or to retry), sent, failed
    attempts: int
    not_before: datetime | None = None
    error: str | None = None
    provider_id: str | None = None
    sent_at: datetime | None = None


async def _record(conn: asyncpg.Connection, outcomes: list[_Outcome], now: datetime) -> None:
    """One statement for a batch: each message's new state; a sent message's other channels
    are not needed any more; a failed one hands over to the next channel of the citizen's
    preference. (The three touch different rows, so they can share one statement.)"""
    sent = [o.row["event_id"] for o in outcomes if o.status == "sent"]
    failed = [o.row["event_id"] for o in outcomes if o.status == "failed"]
    await conn.execute(
        "WITH outcome AS (UPDATE notifications n SET status = o.status, attempts = o.attempts, "
        "  not_before = coalesce(o.not_before, n.not_before), last_error = coalesce(o.error, n.last_error), "
        "  provider_id = o.provider_id, sent_at = o.sent_at "
        "  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::text[], $7::timestamptz[]) "
        "    AS o(id, status, attempts, not_before, error, provider_id, sent_at) WHERE n.id = o.id), "
        "skipped AS (UPDATE notifications SET status = 'skipped' WHERE event_id = ANY($8::text[]) AND status = 'standby'), "
        "fallback AS (UPDATE notifications SET status = 'pending', not_before = $10 WHERE id IN ("
        "  SELECT DISTINCT ON (event_id) id FROM notifications WHERE event_id = ANY($9::text[]) AND status = 'standby' "
        "  ORDER BY event_id, position)) "
        "SELECT 1",
        [o.row["id"] for o in outcomes],
        [o.status for o in outcomes],
        [o.attempts for o in outcomes],
        [o.not_before for o in outcomes],
        [o.error for o in outcomes],
        [o.provider_id for o in outcomes],
        [o.sent_at for o in outcomes],
        sent,
        failed,
        now,
    )
