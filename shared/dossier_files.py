"""Listing and opening a dossier's files, the same way wherever a dossier is read: intake
(the portal that submitted it, the receiving counter) and routing (the agencies on its route).
The access policy has already decided who may; here every opening is recorded as an event
(``DossierFileOpened``), so the dossier's timeline shows who opened what, and when.

Both services keep a ``dossier_files`` table of the same shape, joined to their ``dossiers``
by the column ``key`` names (intake's ``id``, routing's ``dossier_id``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
from starlette.responses import StreamingResponse

from shared.access import Caller
from shared.deps import actor_of
from shared.errors import NotFound
from shared.events import DocumentRef, DossierFileOpened
from shared.files import FileOut, file_response
from shared.runtime import ServiceRuntime


def namespace_of(doc: DocumentRef) -> str:
    """Where a file's bytes are: an official document's PDF in the documents service's
    namespace, every other file in the dossiers'."""
    return "documents" if doc.document_id is not None else "dossiers"


async def bind(
    conn: asyncpg.Connection, dossier_id: uuid.UUID, documents: Iterable[DocumentRef], role: str, now: datetime
) -> None:
    """The dossier's files of one kind (component, supplement, result): those with a file."""
    rows = [
        (
            dossier_id,
            d.sha256,
            role,
            d.component,
            d.name,
            d.media_type or "application/pdf",
            d.size or 0,
            d.reused_from,
            namespace_of(d),
            now,
        )
        for d in documents
        if d.sha256 is not None
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO dossier_files (dossier_id, sha256, role, component, name, media_type, size, reused_from, "
            "store, bound_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            rows,
        )


def _query(key: str) -> str:
    """One file of a dossier, by the dossier's code and the file's hash."""
    return (
        f"SELECT d.{key} AS dossier_id, f.name, f.media_type, f.role, f.store FROM dossier_files f "
        f"JOIN dossiers d ON d.{key} = f.dossier_id WHERE d.code = $1 AND f.sha256 = $2 ORDER BY f.role LIMIT 1"
    )


async def list_files(rt: ServiceRuntime[Any], key: str, code: str, prefix: str = "/v1") -> list[FileOut]:
    rows = await rt.pool.fetch(
        f"SELECT f.sha256, f.name, f.media_type, f.size, f.role, f.component, f.reused_from FROM dossiers d "
        f"LEFT JOIN dossier_files f ON f.dossier_id = d.{key} WHERE d.code = $1 ORDER BY f.bound_at, f.role, f.name",
        code,
    )
    if not rows:
        raise NotFound(f"no dossier with code {code!r}")
    return [
        FileOut(**{k: r[k] for k in FILE_FIELDS}, url=f"{prefix}/dossiers/{code}/files/{r['sha256']}")
        for r in rows
        if r["sha256"] is not None  # a dossier with no file: one row, no file
    ]


FILE_FIELDS = ("sha256", "name", "media_type", "size", "role", "component", "reused_from")


async def open_file(rt: ServiceRuntime[Any], key: str, code: str, sha256: str, caller: Caller) -> StreamingResponse:
    """Find the file, record the opening (one event), then stream it."""
    row = await rt.pool.fetchrow(_query(key), code, sha256)
    if row is None:
        raise NotFound(f"dossier {code} has no file {sha256[:12]}…")
    response = await file_response(rt.files(row["store"]), sha256, row["name"], row["media_type"])
    async with rt.pool.acquire() as conn, conn.transaction():
        await rt.outbox.add(
            conn,
            DossierFileOpened(
                dossier_id=row["dossier_id"],
                dossier_code=code,
                at=rt.clock.now(),
                sha256=sha256,
                name=row["name"],
                role=row["role"],
                agency_code=caller.agency,
                actor=actor_of(caller),
            ),
        )
    rt.wake_workers()
    return response
