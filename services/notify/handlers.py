"""Notify's use cases: plan the messages an event calls for (in the inbox transaction), and
send what is due (a worker). One row per (event, channel) makes each message go out once."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, time, timedelta

import asyncpg

from shared.events import DocumentViewOverdue, DossierReceived, DossierRefused, Envelope, EventData, PickupRequested
from shared.personal_data import PersonalDataError
from shared.reference.calendar import LOCAL_TZ
from shared.settings import Settings
from shared.staff import StaffDirectory
from services.notify.providers import ProviderError
from services.notify.templates import compose, late_document

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


async def plan_notifications(event: EventData, envelope: Envelope, conn: asyncpg.Connection, *, settings: Settings,
                             now: datetime) -> None:
    if isinstance(event, (DossierReceived, PickupRequested)):
        a = event.applicant
        channels = [c for c in event.notify_via if c != "email" or a.email]
        await conn.execute(
            "INSERT INTO recipients (dossier_id, dossier_code, full_name, phone, email, channels) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (dossier_id) DO UPDATE SET dossier_code = coalesce(EXCLUDED.dossier_code, recipients.dossier_code)",
            event.dossier_id, getattr(event, "dossier_code", None), a.full_name, a.phone, a.email, channels,
        )
    if isinstance(event, DossierRefused):
        dossier_id, code = event.refusal_id, None
        name, phone, email = event.contact.full_name, event.contact.phone, event.contact.email
        channels = ["sms", "zalo"] + (["email"] if email else [])
    else:
        dossier_id = getattr(event, "dossier_id", None)
        r = await conn.fetchrow("SELECT * FROM recipients WHERE dossier_id = $1", dossier_id) if dossier_id else None
        if r is None:
            return  # nobody to tell (not a dossier this deployment received)
        name, phone, email, channels = r["full_name"], r["phone"], r["email"], r["channels"]
        code = getattr(event, "dossier_code", None) or r["dossier_code"]
    message = compose(event, name, code)
    if message is None:
        return
    urgent = envelope.type in {t.strip() for t in settings.urgent_events.split(",") if t.strip()}
    pd = settings.personal_data
    for position, channel in enumerate(channels):
        address = email if channel == "email" else phone  # the phone stays sealed; its hash finds it
        address_hash = pd.lookup_hash(email if channel == "email" else pd.open(phone, "phone"))
        body = {"sms": message.sms, "zalo": message.zalo, "email": message.email}[channel]
        await conn.execute(
            "INSERT INTO notifications (id, event_id, dossier_id, dossier_code, event_type, channel, position, address, "
            "subject, body, status, urgent, not_before, created_at, address_hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) "
            "ON CONFLICT (event_id, channel) DO NOTHING",
            uuid.uuid4(), envelope.id, dossier_id, code, envelope.type, channel, position, address,
            message.subject, body, "pending" if position == 0 else "standby", urgent, now, address_hash,
        )


def quiet_window(settings: Settings) -> tuple[time, time]:
    start, end = settings.quiet_hours.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_until(now: datetime, settings: Settings) -> datetime | None:
    """The end of the quiet hours ``now`` falls in, or None outside them."""
    start, end = quiet_window(settings)
    local = now.astimezone(LOCAL_TZ)
    t = local.time()
    in_quiet = (t >= start or t < end) if start > end else (start <= t < end)
    if not in_quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, LOCAL_TZ)


async def tell_staff(event: DocumentViewOverdue, envelope: Envelope, conn: asyncpg.Connection, *,
                     directory: StaffDirectory, agency_name: str, settings: Settings, now: datetime) -> int:
    """An agency has not opened a document in time: its officials and its manager hear of it
    by e-mail (work mailboxes from the staff directory), each once."""
    addresses = directory.mailboxes(event.recipient_agency)
    message = late_document(event.number, event.urgency, agency_name, event.view_due_at)
    pd = settings.personal_data
    for address in addresses:
        await conn.execute(
            "INSERT INTO notifications (id, event_id, dossier_id, dossier_code, event_type, channel, position, address, "
            "subject, body, status, urgent, not_before, created_at, address_hash) "
            "VALUES ($1, $2, $3, $4, $5, 'email', 0, $6, $7, $8, 'pending', false, $9, $9, $10) "
            "ON CONFLICT (event_id, channel) DO NOTHING",
            # one row per address: the event id is made unique per recipient so each goes once
            uuid.uuid4(), f"{envelope.id}#{address}", event.document_id, event.number, envelope.type, address,
            message.subject, message.email, now, pd.lookup_hash(address))
    if not addresses:
        log.warning("notify.no_staff agency=%s: nobody to tell about a late document", event.recipient_agency)
    return len(addresses)


async def send_due(pool: asyncpg.Pool, providers: dict, settings: Settings, now: datetime,
                   batch: int = 20) -> dict[str, int]:
    """Send pending messages whose time has come. Safe with several notify instances (rows
    are claimed with SKIP LOCKED); a crash after a provider took a message resends it with
    the same idempotency key, which the provider ignores."""
    counts = {"sent": 0, "deferred": 0, "retry": 0, "failed": 0}
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT * FROM notifications WHERE status = 'pending' AND not_before <= $1 ORDER BY created_at "
            "LIMIT $2 FOR UPDATE SKIP LOCKED", now, batch,
        )
        for n in rows:
            later = None if n["urgent"] else quiet_until(now, settings)
            if later is None:
                # the limit-th most recent message to this recipient within the hour, if there is one:
                # a slot frees when it leaves the window (the index walks at most `limit` entries)
                full_since = await conn.fetchval(
                    "SELECT sent_at FROM notifications WHERE address_hash = $1 AND status = 'sent' AND sent_at > $2 "
                    "ORDER BY sent_at DESC OFFSET $3 LIMIT 1",
                    n["address_hash"], now - timedelta(hours=1), settings.rate_limit_per_hour - 1,
                )
                if full_since is not None:
                    later = full_since + timedelta(hours=1)
            if later is not None:
                await conn.execute("UPDATE notifications SET not_before = $2 WHERE id = $1", n["id"], later)
                counts["deferred"] += 1
                continue
            try:
                address = n["address"] if n["channel"] == "email" else settings.personal_data.open(n["address"], "phone")
            except PersonalDataError as exc:  # a key removed too early: nothing to send to, say so
                await conn.execute("UPDATE notifications SET status = 'failed', last_error = $2 WHERE id = $1", n["id"], str(exc))
                log.error("notify.unopenable id=%s %s", n["id"], exc)
                counts["failed"] += 1
                continue
            try:
                provider_id = await providers[n["channel"]].send(str(n["id"]), address, n["subject"], n["body"])
            except ProviderError as exc:
                attempts = n["attempts"] + 1
                if attempts >= MAX_ATTEMPTS:
                    await conn.execute("UPDATE notifications SET status = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
                                       n["id"], attempts, str(exc))
                    # fall back to the next channel of the citizen's preference
                    await conn.execute(
                        "UPDATE notifications SET status = 'pending', not_before = $2 WHERE id = ("
                        "SELECT id FROM notifications WHERE event_id = $1 AND status = 'standby' ORDER BY position LIMIT 1)",
                        n["event_id"], now,
                    )
                    log.warning("notify.channel_failed id=%s channel=%s error=%s", n["id"], n["channel"], exc)
                    counts["failed"] += 1
                else:
                    await conn.execute("UPDATE notifications SET attempts = $2, last_error = $3, not_before = $4 WHERE id = $1",
                                       n["id"], attempts, str(exc), now + timedelta(seconds=0.5 * 2 ** attempts))
                    counts["retry"] += 1
                continue
            await conn.execute("UPDATE notifications SET status = 'sent', attempts = attempts + 1, provider_id = $2, "
                               "sent_at = $3 WHERE id = $1", n["id"], provider_id, now)
            await conn.execute("UPDATE notifications SET status = 'skipped' WHERE event_id = $1 AND status = 'standby'",
                               n["event_id"])
            log.info("notify.sent id=%s channel=%s type=%s", n["id"], n["channel"], n["event_type"])
            counts["sent"] += 1
    return counts
