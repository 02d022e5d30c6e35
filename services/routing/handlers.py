"""Routing's event handlers: plain functions of the event and a connection in the inbox
transaction (see shared/consumer.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from shared.consumer import EventConsumer
from shared.events import DossierReceived, DossierRecorded, Envelope
from shared.outbox import Outbox
from shared.telemetry import current_trace_id


async def record_received_dossier(event: DossierReceived, envelope: Envelope, conn: asyncpg.Connection,
                                  *, outbox: Outbox) -> None:
    now = datetime.now(timezone.utc)
    inserted = await conn.fetchval(
        "INSERT INTO dossiers (dossier_id, code, procedure_code, agency_code, status, received_at, recorded_at, trace_id) "
        "VALUES ($1, $2, $3, $4, 'recorded', $5, $6, $7) ON CONFLICT (dossier_id) DO NOTHING RETURNING true",
        event.dossier_id, event.dossier_code, event.procedure_code, event.agency_code,
        event.received_at, now, current_trace_id(),
    )
    if inserted:
        await outbox.add(conn, DossierRecorded(
            dossier_id=event.dossier_id, dossier_code=event.dossier_code,
            agency_code=event.agency_code, recorded_at=now,
        ))


def register(consumer: EventConsumer, outbox: Outbox) -> None:
    @consumer.on(DossierReceived)
    async def record_received(event, envelope, conn):
        await record_received_dossier(event, envelope, conn, outbox=outbox)
