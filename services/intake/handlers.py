"""Intake's use cases. Each takes a command and its dependencies, and writes its state
change and the events it emits in one transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import asyncpg

from shared.events import Applicant, DossierReceived
from shared.outbox import Outbox
from shared.telemetry import current_trace_id
from services.intake import domain
from services.intake.schemas import DossierOut, SubmitDossier

_COLUMNS = "id, code, procedure_code, agency_code, channel, status, received_at, trace_id"


async def submit_dossier(
    cmd: SubmitDossier, *, pool: asyncpg.Pool, outbox: Outbox, idempotency_key: str | None,
    now: datetime | None = None,
) -> tuple[DossierOut, bool]:
    """Receive a dossier; returns it and whether it was created now (False: a retry)."""
    now = now or datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        if idempotency_key:
            existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM dossiers WHERE idempotency_key = $1", idempotency_key)
            if existing:
                return DossierOut(**dict(existing)), False
        try:
            async with conn.transaction():
                dossier = await _receive(conn, outbox, cmd, idempotency_key, now)
            return dossier, True
        except asyncpg.UniqueViolationError:
            # The same key raced in from a concurrent retry: answer with the winner's dossier.
            existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM dossiers WHERE idempotency_key = $1", idempotency_key)
            if existing is None:
                raise
            return DossierOut(**dict(existing)), False


async def _receive(conn: asyncpg.Connection, outbox: Outbox, cmd: SubmitDossier,
                   idempotency_key: str | None, now: datetime) -> DossierOut:
    day = domain.local_day(now)
    # One row per agency and day, incremented atomically: concurrent submissions get distinct numbers.
    sequence = await conn.fetchval(
        "INSERT INTO daily_sequences (agency_code, day, last_value) VALUES ($1, $2, 1) "
        "ON CONFLICT (agency_code, day) DO UPDATE SET last_value = daily_sequences.last_value + 1 "
        "RETURNING last_value",
        cmd.agency_code, day,
    )
    dossier = DossierOut(
        id=uuid.uuid4(), code=domain.dossier_code(cmd.agency_code, day, sequence),
        procedure_code=cmd.procedure_code, agency_code=cmd.agency_code, channel=cmd.channel,
        status="received", received_at=now, trace_id=current_trace_id(),
    )
    await conn.execute(
        "INSERT INTO dossiers (id, code, procedure_code, agency_code, channel, applicant, status, received_at, idempotency_key, trace_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        dossier.id, dossier.code, dossier.procedure_code, dossier.agency_code, dossier.channel.value,
        json.dumps(cmd.applicant.model_dump(), ensure_ascii=False), dossier.status, now, idempotency_key, dossier.trace_id,
    )
    await outbox.add(conn, DossierReceived(
        dossier_id=dossier.id, dossier_code=dossier.code, procedure_code=dossier.procedure_code,
        agency_code=dossier.agency_code, channel=dossier.channel.value,
        applicant=Applicant(**cmd.applicant.model_dump()), received_at=now,
    ))
    return dossier


async def get_dossier(code: str, *, pool: asyncpg.Pool) -> DossierOut | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM dossiers WHERE code = $1", code)
    return DossierOut(**dict(row)) if row else None
