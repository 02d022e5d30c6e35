"""Postal's use cases: book shipments (a worker that retries until the carrier takes them,
never booking twice), and apply the carrier's reports."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import asyncpg
import httpx

from services.postal.domain import REPORTED, can_move
from services.postal.schemas import CarrierReport
from shared.events import (
    DossierReceived,
    DossierResolved,
    Envelope,
    EventData,
    PickupRequested,
    ShipmentBooked,
    ShipmentProgressed,
)
from shared.outbox import Outbox
from shared.telemetry import context_from_headers, current_trace_headers, tracer

log = logging.getLogger(__name__)


async def _new_shipment(
    conn, dossier_id, code, kind: str, address: str, now: datetime, contents: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO shipments (id, dossier_id, dossier_code, kind, address, status, next_attempt_at, traceparent, "
        "created_at, updated_at, contents) VALUES ($1, $2, $3, $4, $5, 'booking', $6, $7, $6, $6, $8) "
        "ON CONFLICT (dossier_id, kind) DO NOTHING",
        uuid.uuid4(),
        dossier_id,
        code,
        kind,
        address,
        now,
        current_trace_headers().get("traceparent"),
        contents,
    )


def result_contents(event: DossierResolved) -> str:
    """What the delivery carries, as the carrier's slip shows it."""
    what = f"Kết quả hồ sơ {event.dossier_code}"
    result = event.result_document
    if result is not None and result.number:
        what += f": văn bản số {result.number}"
    if result is not None and result.sha256:
        # the printed copy names the file kept for the citizen, so either can be checked against the other
        what += f" (bản điện tử SHA-256 {result.sha256[:16]}…)"
    return what


async def on_event(event: EventData, envelope: Envelope, conn: asyncpg.Connection, *, now: datetime) -> None:
    match event:
        case PickupRequested():
            await _new_shipment(conn, event.dossier_id, None, "pickup", event.applicant.address, now)
        case DossierReceived(result_delivery="postal"):
            await conn.execute(
                "INSERT INTO delivery_addresses (dossier_id, dossier_code, address) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                event.dossier_id,
                event.dossier_code,
                event.applicant.address,
            )
        case DossierResolved():
            where = await conn.fetchrow("SELECT * FROM delivery_addresses WHERE dossier_id = $1", event.dossier_id)
            if where is not None:
                await _new_shipment(
                    conn,
                    event.dossier_id,
                    event.dossier_code,
                    "delivery",
                    where["address"],
                    now,
                    result_contents(event),
                )


async def book_due(
    pool: asyncpg.Pool,
    outbox: Outbox,
    http: httpx.AsyncClient,
    carrier_url: str,
    callback_url: str,
    now: datetime,
    batch: int = 20,
) -> int:
    """Book shipments waiting for the carrier. The shipment id is the idempotency key, so a
    retry after a timeout or a crash returns the first booking instead of making another."""
    booked = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT * FROM shipments WHERE status = 'booking' AND next_attempt_at <= $1 ORDER BY created_at "
            "LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            batch,
        )
        for s in rows:
            with tracer("lgsp.postal").start_as_current_span(
                "postal book shipment",
                context=context_from_headers({"traceparent": s["traceparent"]} if s["traceparent"] else {}),
                attributes={"lgsp.shipment.kind": s["kind"]},
            ):
                try:
                    r = await http.post(
                        f"{carrier_url}/v1/shipments",
                        headers={"Idempotency-Key": str(s["id"])},
                        json={
                            "reference": str(s["id"]),
                            "kind": s["kind"],
                            "to_address": s["address"],
                            "callback_url": callback_url,
                            **({"contents": s["contents"]} if s["contents"] else {}),
                        },
                    )
                    if r.status_code not in (200, 201):
                        raise httpx.HTTPStatusError(f"HTTP {r.status_code}", request=r.request, response=r)
                except httpx.HTTPError as exc:
                    attempts = s["attempts"] + 1
                    delay = min(0.5 * 2**attempts, 30.0)
                    await conn.execute(
                        "UPDATE shipments SET attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1",
                        s["id"],
                        attempts,
                        type(exc).__name__ + (f" {exc}" if isinstance(exc, httpx.HTTPStatusError) else ""),
                        now + timedelta(seconds=delay),
                    )
                    log.warning(
                        "postal.carrier_unavailable shipment=%s attempt=%d retry_in=%.1fs", s["id"], attempts, delay
                    )
                    continue
                ref = r.json()["id"]
                await conn.execute(
                    "UPDATE shipments SET status = 'accepted', carrier_ref = $2, attempts = attempts + 1, "
                    "updated_at = $3 WHERE id = $1",
                    s["id"],
                    ref,
                    now,
                )
                await outbox.add(
                    conn,
                    ShipmentBooked(
                        dossier_id=s["dossier_id"],
                        dossier_code=s["dossier_code"],
                        at=now,
                        shipment_id=s["id"],
                        kind=s["kind"],
                        carrier_ref=ref,
                    ),
                )
                booked += 1
    return booked


async def apply_webhook(pool: asyncpg.Pool, outbox: Outbox, report: CarrierReport, now: datetime) -> str:
    """Apply one carrier report; returns 'applied', 'duplicate', 'stale' or 'unknown'."""
    shipment_id, status, event_id = report.reference, report.status, report.event_id
    async with pool.acquire() as conn, conn.transaction():
        s = await conn.fetchrow("SELECT * FROM shipments WHERE id = $1 FOR UPDATE", shipment_id)
        if s is None:
            return "unknown"
        legal = status in REPORTED and can_move(s["status"], status)
        fresh = await conn.fetchval(
            "INSERT INTO carrier_webhooks (event_id, shipment_id, status, applied, received_at) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING RETURNING true",
            event_id,
            shipment_id,
            status,
            legal,
            now,
        )
        if not fresh:
            return "duplicate"
        if not legal:
            log.info("postal.webhook_stale shipment=%s current=%s reported=%s", shipment_id, s["status"], status)
            return "stale"
        await conn.execute("UPDATE shipments SET status = $2, updated_at = $3 WHERE id = $1", shipment_id, status, now)
        with tracer("lgsp.postal").start_as_current_span(
            f"postal shipment {status}",
            context=context_from_headers({"traceparent": s["traceparent"]} if s["traceparent"] else {}),
        ):
            await outbox.add(
                conn,
                ShipmentProgressed(
                    dossier_id=s["dossier_id"],
                    dossier_code=s["dossier_code"],
                    at=now,
                    shipment_id=shipment_id,
                    kind=s["kind"],
                    status=status,
                    reason=report.reason,
                ),
            )
        return "applied"
