"""Where routing keeps its dossiers: loading a ``Dossier`` (dossier.py) with its steps, and
saving any number of them in one statement. Every read for an action locks the dossier's row,
so two actions on one dossier take turns."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from services.routing.dossier import DecisionDocument, Dossier, Step
from shared.reference.catalogue import Agency

_DOSSIER_FIELDS = (
    "dossier_id",
    "code",
    "procedure_code",
    "receiving_agency",
    "received_at",
    "due_at",
    "status",
    "current_step",
    "result_kind",
    "outcome",
    "paused_at",
    "at_risk_for",
    "overdue_for",
    "apologies",
    "resolved_at",
    "finished_at",
    "updated_at",
    "trace_id",
    "traceparent",
)
STEP_FIELDS = (
    "idx",
    "name",
    "kind",
    "level",
    "agency_code",
    "days",
    "due_at",
    "status",
    "assigned_at",
    "accepted_at",
    "finished_at",
    "overdue_flagged",
)
_SELECT = (
    "SELECT d.*, ARRAY(SELECT s FROM steps s WHERE s.dossier_id = d.dossier_id ORDER BY s.idx) AS steps "
    "FROM dossiers d "
)


_SAVED_STEP_FIELDS = ("status", "due_at", "assigned_at", "accepted_at", "finished_at", "overdue_flagged")


def _as_saved(step: Step) -> tuple:
    return tuple(getattr(step, f) for f in _SAVED_STEP_FIELDS)


def _dossier(row: asyncpg.Record, agencies: Mapping[str, Agency]) -> Dossier:
    steps = [Step(**{f: s[f] for f in STEP_FIELDS}) for s in row["steps"]]
    d = Dossier(**{f: row[f] for f in _DOSSIER_FIELDS}, steps=steps, catalogue_agencies=agencies)
    d.as_loaded = {s.idx: _as_saved(s) for s in steps}
    return d


async def load(
    conn: asyncpg.Connection,
    agencies: Mapping[str, Agency],
    *,
    code: str | None = None,
    dossier_id: uuid.UUID | None = None,
) -> Dossier | None:
    """The dossier with this code (or id), locked for the transaction."""
    where, value = ("d.code", code) if code is not None else ("d.dossier_id", dossier_id)
    row = await conn.fetchrow(_SELECT + f"WHERE {where} = $1 FOR UPDATE OF d", value)
    return None if row is None else _dossier(row, agencies)


async def claim_due(
    conn: asyncpg.Connection, now: datetime, soon: datetime, batch: int, agencies: Mapping[str, Agency]
) -> list[Dossier]:
    """The processing dossiers the passing of time may concern at ``now``, locked, skipping
    those another instance holds: past due and not apologised for, due before ``soon`` and not
    warned about, or with an open step past its own deadline. Each kind has its own share of
    the batch, so that many dossiers soon due cannot hold back an overdue one."""
    rows = await conn.fetch(
        "WITH candidates AS ("
        "  (SELECT dossier_id FROM dossiers WHERE status = 'processing' AND due_at < $1 "
        "     AND overdue_for IS DISTINCT FROM due_at ORDER BY due_at LIMIT $3) "
        "  UNION (SELECT dossier_id FROM dossiers WHERE status = 'processing' AND due_at >= $1 AND due_at < $2 "
        "     AND at_risk_for IS DISTINCT FROM due_at ORDER BY due_at LIMIT $3) "
        "  UNION (SELECT s.dossier_id FROM steps s JOIN dossiers d USING (dossier_id) WHERE d.status = 'processing' "
        "     AND s.status IN ('assigned', 'in_progress') AND NOT s.overdue_flagged AND s.due_at < $1 "
        "     AND s.kind <> 'return' LIMIT $3)) "
        + _SELECT
        + "WHERE d.dossier_id IN (SELECT dossier_id FROM candidates) FOR UPDATE OF d SKIP LOCKED",
        now,
        soon,
        batch,
    )
    return [_dossier(r, agencies) for r in rows]


async def insert(conn: asyncpg.Connection, d: Dossier) -> bool:
    """A new dossier with its steps; False when it exists already (its event came again)."""
    steps = d.steps
    return bool(
        await conn.fetchval(
            "WITH dossier AS (INSERT INTO dossiers (dossier_id, code, procedure_code, receiving_agency, status, current_step, "
            "  received_at, due_at, trace_id, traceparent, updated_at, result_kind) "
            "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (dossier_id) DO NOTHING RETURNING true), "
            "steps AS (INSERT INTO steps (dossier_id, idx, name, kind, level, agency_code, days, due_at, status, assigned_at) "
            "  SELECT $1, s.* FROM unnest($13::int[], $14::text[], $15::text[], $16::text[], $17::text[], $18::numeric[], "
            "    $19::timestamptz[], $20::text[], $21::timestamptz[]) "
            "    AS s(idx, name, kind, level, agency_code, days, due_at, status, assigned_at) WHERE EXISTS (SELECT 1 FROM dossier)) "
            "SELECT true FROM dossier",
            d.dossier_id,
            d.code,
            d.procedure_code,
            d.receiving_agency,
            d.status,
            d.current_step,
            d.received_at,
            d.due_at,
            d.trace_id,
            d.traceparent,
            d.updated_at,
            d.result_kind,
            [s.idx for s in steps],
            [s.name for s in steps],
            [s.kind for s in steps],
            [s.level for s in steps],
            [s.agency_code for s in steps],
            [s.days for s in steps],
            [s.due_at for s in steps],
            [s.status for s in steps],
            [s.assigned_at for s in steps],
        )
    )


async def save(conn: asyncpg.Connection, dossiers: list[Dossier]) -> None:
    """Write what the model may have changed, for every dossier and step given, in one statement."""
    if not dossiers:
        return
    # only the steps that changed since they were loaded: an action touches one or two
    steps = [(d.dossier_id, s) for d in dossiers for s in d.steps if d.as_loaded.get(s.idx) != _as_saved(s)]
    await conn.execute(
        "WITH saved AS (UPDATE dossiers x SET status = u.status, current_step = u.current_step, due_at = u.due_at, "
        "  paused_at = u.paused_at, at_risk_for = u.at_risk_for, overdue_for = u.overdue_for, apologies = u.apologies, "
        "  outcome = u.outcome, resolved_at = u.resolved_at, finished_at = u.finished_at, updated_at = u.updated_at "
        "  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], "
        "    $7::timestamptz[], $8::int[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[]) "
        "    AS u(dossier_id, status, current_step, due_at, paused_at, at_risk_for, overdue_for, apologies, outcome, "
        "         resolved_at, finished_at, updated_at) "
        "  WHERE x.dossier_id = u.dossier_id) "
        "UPDATE steps x SET status = u.status, due_at = u.due_at, assigned_at = u.assigned_at, accepted_at = u.accepted_at, "
        "  finished_at = u.finished_at, overdue_flagged = u.overdue_flagged "
        "FROM unnest($13::uuid[], $14::int[], $15::text[], $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], "
        "  $19::timestamptz[], $20::boolean[]) "
        "  AS u(dossier_id, idx, status, due_at, assigned_at, accepted_at, finished_at, overdue_flagged) "
        "WHERE x.dossier_id = u.dossier_id AND x.idx = u.idx",
        [d.dossier_id for d in dossiers],
        [d.status for d in dossiers],
        [d.current_step for d in dossiers],
        [d.due_at for d in dossiers],
        [d.paused_at for d in dossiers],
        [d.at_risk_for for d in dossiers],
        [d.overdue_for for d in dossiers],
        [d.apologies for d in dossiers],
        [d.outcome for d in dossiers],
        [d.resolved_at for d in dossiers],
        [d.finished_at for d in dossiers],
        [d.updated_at for d in dossiers],
        [i for i, _ in steps],
        [s.idx for _, s in steps],
        [s.status for _, s in steps],
        [s.due_at for _, s in steps],
        [s.assigned_at for _, s in steps],
        [s.accepted_at for _, s in steps],
        [s.finished_at for _, s in steps],
        [s.overdue_flagged for _, s in steps],
    )
    for d in dossiers:
        d.as_loaded = {s.idx: _as_saved(s) for s in d.steps}


async def decision_document(conn: asyncpg.Connection, document_id: uuid.UUID) -> DecisionDocument | None:
    """A document sent for a dossier, as routing saw it arrive."""
    row = await conn.fetchrow(
        "SELECT document_id, dossier_id, sender_agency, number, doc_type, sha256, size, state, reason "
        "FROM dossier_documents WHERE document_id = $1",
        document_id,
    )
    return None if row is None else DecisionDocument(**dict(row))
