"""The dossier's files as intake registers them: who uploaded what, which files each dossier
binds (components at receipt and supplement, its result), the applicant's reusable results,
retention, and the collector of files nothing refers to.

The bytes are in the file store (shared/files.py, namespace ``dossiers``). One lock per file
hash (a PostgreSQL advisory lock) orders the three things that could race: an upload records
itself and a submission binds a file under the shared lock; the collector checks that nothing
refers to a file and removes it under the exclusive one. So no dossier ever binds a file the
collector is removing, and the collector never removes a file a dossier names.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg

from services.intake.checks import StoredFile, check_files
from shared.events import DocumentRef, Reason
from shared.files import Blob, BlobStore, spool

log = logging.getLogger(__name__)

FINISHED = ("returned", "withdrawn", "stopped")


def _lock_key(sha256: str) -> int:
    """The advisory lock of one file: the first 63 bits of its hash."""
    return int(sha256[:16], 16) >> 1


async def _lock(conn: asyncpg.Connection, shas: list[str], *, exclusive: bool) -> None:
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    for key in sorted({_lock_key(s) for s in shas}):  # always in the same order: no deadlock
        await conn.execute(f"SELECT {fn}($1)", key)


async def store_upload(
    pool: asyncpg.Pool, store: BlobStore, chunks: AsyncIterator[bytes], limit: int, uploaded_by: str, now: datetime
) -> Blob:
    """An upload: read and checked first (the client's pace holds nothing here), then stored
    and recorded as ``uploaded_by``'s under the file's shared lock. The lock is held across the
    store's write (a server-side call, not the client's), so the collector, which decides under
    the exclusive one, sees either no file or a fresh one with its upload row: it never removes
    a file between its write and its record."""
    spooled = await spool(chunks, limit)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await _lock(conn, [spooled.blob.sha256], exclusive=False)
            blob = await store.put_spooled(spooled)
            await conn.execute(
                "INSERT INTO uploads (sha256, uploaded_by, size, media_type, uploaded_at) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (sha256, uploaded_by) DO UPDATE SET uploaded_at = EXCLUDED.uploaded_at",
                blob.sha256,
                uploaded_by,
                blob.size,
                blob.media_type,
                now,
            )
    finally:
        spooled.close()
    return blob


async def resolve(
    conn: asyncpg.Connection,
    documents: list[DocumentRef],
    channel: str,
    submitted_by: str | None,
    applicant_key: str | None,
    max_dossier_bytes: int,
) -> tuple[list[DocumentRef], list[Reason]]:
    """The documents as they will be bound, and the reasons to refuse them (checks.check_files).
    Runs in the receiving transaction, which keeps the shared locks of the files it names."""
    shas = [d.sha256 for d in documents if d.sha256]
    await _lock(conn, shas, exclusive=False)
    uploaded = {
        r["sha256"]: StoredFile(r["size"], r["media_type"])
        for r in await conn.fetch(
            "SELECT sha256, size, media_type FROM uploads WHERE sha256 = ANY($1::text[]) AND uploaded_by = $2",
            shas,
            submitted_by or "",
        )
    }
    codes = [d.reused_from for d in documents if d.reused_from]
    reusable: dict[str, DocumentRef] = {}
    if codes and applicant_key:
        for r in await conn.fetch(
            "SELECT d.code, f.sha256, f.size, f.media_type, f.name FROM dossiers d "
            "JOIN dossier_files f ON f.dossier_id = d.id AND f.role = 'result' "
            "WHERE d.code = ANY($1::text[]) AND d.applicant_key = $2 AND d.outcome = 'approved'",
            codes,
            applicant_key,
        ):
            reusable[r["code"]] = DocumentRef(
                name=r["name"], sha256=r["sha256"], size=r["size"], media_type=r["media_type"]
            )
        await _lock(conn, [r.sha256 for r in reusable.values() if r.sha256], exclusive=False)
    return check_files(documents, channel, uploaded, reusable, max_dossier_bytes)


def keep_until(finished_at: datetime, retention_days: int) -> datetime:
    return finished_at + timedelta(days=retention_days)


@dataclass
class Collected:
    unbound: int = 0  # dossier_files rows of dossiers past their retention
    removed: int = 0  # files removed from the store
    kept: int = 0  # candidates found referenced (or re-uploaded) on a second look


async def collect(
    pool: asyncpg.Pool,
    store: BlobStore,
    now: datetime,
    grace: timedelta,
    limit: int = 1000,
    store_now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> Collected:
    """Unbind the files of dossiers past their retention, then remove the files in the store
    that no dossier names and nobody uploaded within ``grace``. Each removal is decided again
    under the file's exclusive lock, so a submission binding it at that moment wins.

    Two clocks: ``now`` (the platform's) judges retention and the upload rows; a file's time in
    the store is the store's own, real time, so it is judged against ``store_now`` — a platform
    clock moved ahead must never make a file uploaded a second ago look old."""
    done = Collected()
    done.unbound = int(
        (
            await pool.execute(
                "DELETE FROM dossier_files f USING dossiers d WHERE f.dossier_id = d.id "
                "AND d.files_kept_until IS NOT NULL AND d.files_kept_until < $1 AND d.status = ANY($2::text[])",
                now,
                list(FINISHED),
            )
        ).split()[-1]
    )
    cutoff, store_cutoff = now - grace, store_now() - grace
    candidates = []
    async for info in store.listing():
        if info.modified < store_cutoff:
            candidates.append(info.sha256)
        if len(candidates) >= limit:
            break
    for sha in candidates:
        async with pool.acquire() as conn, conn.transaction():
            await _lock(conn, [sha], exclusive=True)
            referenced = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM dossier_files WHERE sha256 = $1 AND store = 'dossiers') "
                "OR EXISTS (SELECT 1 FROM uploads WHERE sha256 = $1 AND uploaded_at >= $2)",
                sha,
                cutoff,
            )
            now_there = await store.stat(sha)
            if referenced or now_there is None or now_there.modified >= store_cutoff:
                done.kept += referenced or now_there is not None
                continue
            await conn.execute("DELETE FROM uploads WHERE sha256 = $1", sha)
            await store.delete(sha)  # under the lock: nobody binds it meanwhile (see the module's docstring)
            done.removed += 1
    if done.unbound or done.removed:
        log.info("files.collected unbound=%d removed=%d kept=%d", done.unbound, done.removed, done.kept)
    return done
