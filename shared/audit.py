"""The audit log: every state-changing request and every refused one, append-only, in each
service's own schema (table ``audit_log``, see shared/sql/audit.sql; a trigger refuses UPDATE,
DELETE and TRUNCATE).

A row says who (client, person, agency: from the token), what (method, route, the dossier
code when the route names one), when (the platform clock), the outcome and, for refusals,
why; the request id and trace id tie it to the logs and the trace. Bodies are never stored,
so no citizen's personal data reaches the log.

Rows are written by group commit: a request waits until its row is committed, and rows that
arrive while a commit is under way share the next one, so the log costs one commit per batch
of requests rather than one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import datetime

import asyncpg

from shared.telemetry import mask_personal_data

log = logging.getLogger(__name__)

READS = ("GET", "HEAD", "OPTIONS")
DENIED = (401, 403, 429)
REASON_MAX = 300


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    service: str
    method: str
    route: str
    dossier_code: str | None
    status: int
    outcome: str
    reason: str | None
    client_id: str | None
    username: str | None
    agency: str | None
    request_id: str
    trace_id: str | None


def outcome_of(status: int) -> str:
    if status < 400:
        return "done"
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "throttled"
    return "refused" if status < 500 else "failed"


def worth_recording(method: str, status: int) -> bool:
    """State-changing requests, whatever their outcome, and every denied or throttled one."""
    return method not in READS or status in DENIED


def clean_reason(reason: str | None) -> str | None:
    return mask_personal_data(reason)[:REASON_MAX] if reason else None


class AnonymousRefusals:
    """Anonymous refusals (401 without a valid token) cost an attacker nothing, so they are not
    written one row each without limit: the first ``per_window`` of each window are, the rest
    are counted, and the count is written as one row when the next window opens. Per service
    process; ``monotonic`` is injected for tests."""

    def __init__(
        self, per_window: int = 20, window_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_window, self.window_s, self.monotonic = per_window, window_s, monotonic
        self._window_start = float("-inf")
        self._recorded = 0
        self._counted = 0

    def admit(self) -> tuple[bool, int]:
        """(whether to record this refusal row by row, how many went uncounted in the window
        that just closed: to be written as one summary row, or 0)."""
        now, closed = self.monotonic(), 0
        if now - self._window_start >= self.window_s:
            closed, self._counted = self._counted, 0
            self._window_start, self._recorded = now, 0
        if self._recorded < self.per_window:
            self._recorded += 1
            return True, closed
        self._counted += 1
        return False, closed


def summary_of_unrecorded(count: int, window_s: float) -> str:
    return f"{count} further anonymous refusals within {window_s:.0f} s, counted here instead of one row each"


INSERT = (
    "INSERT INTO audit_log (at, service, method, route, dossier_code, status, outcome, reason, client_id, "
    "username, agency, request_id, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)


class AuditLog:
    def __init__(self, pool: asyncpg.Pool, anonymous: AnonymousRefusals | None = None) -> None:
        self.pool = pool
        self.anonymous = anonymous or AnonymousRefusals()
        self._pending: list[tuple[AuditEntry, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def record(self, entry: AuditEntry) -> None:
        """Returns once the entry is committed; a failure is logged, never raised: the request
        it describes has already happened."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="audit-writer")
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.pool.executemany(INSERT, [astuple(entry) for entry, _ in batch])  # atomic: one commit
            except Exception as exc:  # noqa: BLE001 - reported, and the requests go on
                log.error("audit.write_failed %s: %d entries lost", type(exc).__name__, len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


async def query(
    conn: asyncpg.Connection,
    schemas: list[str],
    *,
    dossier: str | None = None,
    client: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[dict]:
    """Rows of every given service schema that exists, oldest first, filtered as ``lgsp audit`` asks."""
    present = {
        r["nspname"]
        for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])", schemas)
    }
    schemas = [s for s in schemas if s in present]
    if not schemas:
        return []
    parts = [
        f'SELECT * FROM "{schema}".audit_log WHERE ($1::text IS NULL OR dossier_code = $1) '
        f"AND ($2::text IS NULL OR client_id = $2) AND ($3::timestamptz IS NULL OR at >= $3)"
        for schema in schemas
    ]
    rows = await conn.fetch(
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) a ORDER BY at, service, seq LIMIT $4",
        dossier,
        client,
        since,
        limit,
    )
    return [dict(r) for r in rows]
