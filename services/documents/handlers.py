"""The documents service's use cases: store a file once, send a document, receive it on the
document topic (hash first, then both signatures), move a delivery through its statuses,
open it (recording who viewed it), recall and update it.

Every status change is a row in ``delivery_statuses`` (once per delivery, version and status)
and a ``DocumentStatusChanged`` event, written in the same transaction."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta

import asyncpg
import httpx

from services.documents import domain
from services.documents.signatures import Refused, Trust, verify
from shared.errors import Conflict, DomainError, NotFound, Unprocessable
from shared.events import DocumentSent, DocumentStatusChanged, DocumentViewOverdue, StoredFile
from shared.files import BlobCorrupt, BlobMissing, BlobStore
from shared.outbox import Outbox
from shared.topics import DOCUMENT


class NotExchangeable(Unprocessable):
    """The document may never travel on this platform (it is classified)."""


def file_location(sha256: str) -> str:
    return f"/v1/documents/files/{sha256}"


class OverQuota(DomainError):
    """The agency's files would pass its storage quota."""

    status = 413


async def store_file(
    pool: asyncpg.Pool,
    store: BlobStore,
    content: bytes,
    media_type: str,
    by: str | None,
    now: datetime,
    *,
    sha: str | None = None,
    agency: str | None = None,
    quota_bytes: int | None = None,
) -> StoredFile:
    """The file under its SHA-256, stored once however often it is uploaded; a new file counts
    against its uploader's agency, refused (OverQuota) beyond ``quota_bytes``. The quota is
    judged under a per-agency lock, so two uploads at once cannot both slip under it."""
    sha = sha or hashlib.sha256(content).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        if quota_bytes is not None and agency is not None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('files-quota:' || $1))", agency)
            used = await conn.fetchval(
                "SELECT coalesce(sum(size), 0) FROM files WHERE agency = $1 AND sha256 <> $2", agency, sha
            )
            known = await conn.fetchval("SELECT true FROM files WHERE sha256 = $1", sha)
            if not known and used + len(content) > quota_bytes:
                raise OverQuota(
                    f"{agency} has used {used} of its {quota_bytes} bytes of document storage; "
                    f"this file of {len(content)} bytes would pass it"
                )
        # Under the agency's quota lock (an advisory lock, no row held): the bytes are in the
        # store before the row that counts them commits.
        stored = await store.put_bytes(content, frozenset({media_type}))
        if stored.sha256 != sha:
            raise Conflict("the file changed while it was stored")
        await conn.execute(
            "INSERT INTO files (sha256, size, media_type, content, stored_at, stored_by, agency) "
            "VALUES ($1, $2, $3, NULL, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
            sha,
            len(content),
            media_type,
            now,
            by,
            agency,
        )
    return StoredFile(sha256=sha, size=len(content), media_type=media_type, location=file_location(sha))


async def file_content(conn, store: BlobStore, sha256: str) -> bytes | None:
    """A PDF's bytes: from the file store, or from its row if it was stored before the move.
    None when neither has it, or the stored bytes no longer match their hash."""
    row = await conn.fetchrow("SELECT content FROM files WHERE sha256 = $1", sha256)
    if row is None:
        return None
    if row["content"] is not None:
        return row["content"]
    try:
        return await store.read_all(sha256)
    except (BlobMissing, BlobCorrupt):
        return None


async def _stored(conn, sha256: str) -> StoredFile:
    row = await conn.fetchrow("SELECT size, media_type FROM files WHERE sha256 = $1", sha256)
    if row is None:
        raise Conflict(f"no file {sha256} was uploaded: POST it to /v1/documents/files first")
    return StoredFile(sha256=sha256, size=row["size"], media_type=row["media_type"], location=file_location(sha256))


async def send(pool: asyncpg.Pool, outbox: Outbox, cmd, by: str | None, now: datetime) -> uuid.UUID:
    """Registers an outgoing document and sends it to every recipient, in one transaction."""
    if cmd.classification != "none":
        raise NotExchangeable(f"a {cmd.classification} document may not be exchanged electronically on this platform")
    document_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        stored = await _stored(conn, cmd.file_sha256)
        try:
            await conn.execute(
                "INSERT INTO documents (id, sender_agency, number, issued_on, summary, doc_type, urgency, file_sha256, "
                "dossier_code, sent_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                document_id,
                cmd.agency_code,
                cmd.number,
                cmd.issued_on,
                cmd.summary,
                cmd.doc_type,
                cmd.urgency,
                stored.sha256,
                cmd.dossier_code,
                by,
                now,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"{cmd.agency_code} already sent a document {cmd.number} dated {cmd.issued_on}") from None
        recipients = list(dict.fromkeys(cmd.recipients))  # each agency once, in the order given
        await conn.executemany(
            "INSERT INTO deliveries (document_id, recipient_agency, version, status, updated_at) VALUES ($1, $2, 1, 'sending', $3)",
            [(document_id, r, now) for r in recipients],
        )
        await outbox.add(
            conn,
            DocumentSent(
                document_id=document_id,
                version=1,
                at=now,
                sender_agency=cmd.agency_code,
                number=cmd.number,
                issued_on=cmd.issued_on,
                summary=cmd.summary,
                doc_type=cmd.doc_type,
                urgency=cmd.urgency,
                recipients=tuple(recipients),
                file=stored,
                dossier_code=cmd.dossier_code,
                sent_by=by,
            ),
            DOCUMENT,
        )
    return document_id


async def _record(
    conn,
    outbox: Outbox,
    document_id: uuid.UUID,
    agency: str,
    version: int,
    status: str,
    reason: str | None,
    by: str | None,
    now: datetime,
) -> bool:
    """One status of one delivery, once: False when it was already recorded."""
    seq = await conn.fetchval(
        "INSERT INTO delivery_statuses (document_id, recipient_agency, version, status, code, reason, by_user, at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING seq",
        document_id,
        agency,
        version,
        status,
        domain.CODES[status],
        reason,
        by,
        now,
    )
    if seq is None:
        return False
    await conn.execute(
        "UPDATE deliveries SET status = $3, version = $4, reason = $5, updated_at = $6 "
        "WHERE document_id = $1 AND recipient_agency = $2",
        document_id,
        agency,
        status,
        version,
        reason,
        now,
    )
    await outbox.add(
        conn,
        DocumentStatusChanged(
            document_id=document_id,
            version=version,
            at=now,
            recipient_agency=agency,
            status=status,
            code=domain.CODES[status],
            reason=reason,
            by=by,
        ),
        DOCUMENT,
    )
    return True


async def receive(
    event: DocumentSent,
    conn,
    outbox: Outbox,
    trust: Trust,
    calendar,
    now: datetime,
    external: frozenset[str],
    store: BlobStore,
) -> None:
    """The document arrives at each recipient: the file's hash is checked before anything
    else, then both signatures; it is received (arrived) or refused with the reason. A copy
    for an agency of another province (``external``), once checked, is queued for the
    national axis instead, and its statuses come from there."""
    doc = await conn.fetchrow("SELECT version, status FROM documents WHERE id = $1", event.document_id)
    if doc is None or doc["status"] == "recalled" or doc["version"] > event.version:
        return  # recalled meanwhile, or replaced by an update: that version is what counts
    content = await file_content(conn, store, event.file.sha256)
    reason = None
    if content is None:
        reason = "the file is not in the store"
    elif hashlib.sha256(content).hexdigest() != event.file.sha256 or len(content) != event.file.size:
        reason = "the file's SHA-256 does not match the one sent"
    else:
        try:
            await verify(content, trust, now, event.sender_agency)
        except Refused as refused:
            reason = refused.reason
    for agency in event.recipients:
        if event.version > 1:
            await _record(conn, outbox, event.document_id, agency, event.version, "updated", None, event.sent_by, now)
        if agency in external and not reason:
            await conn.execute(
                "INSERT INTO axis_deliveries (document_id, recipient_agency, version, next_attempt_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                event.document_id,
                agency,
                event.version,
                now,
            )
            continue
        if (
            await _record(
                conn,
                outbox,
                event.document_id,
                agency,
                event.version,
                "refused" if reason else "arrived",
                reason,
                None,
                now,
            )
            and not reason
        ):
            await conn.execute(
                "UPDATE deliveries SET arrived_at = $3, view_due_at = $4, process_due_at = $5, done_at = NULL, "
                "view_overdue_at = NULL "
                "WHERE document_id = $1 AND recipient_agency = $2",
                event.document_id,
                agency,
                now,
                calendar.add_working_minutes(now, domain.VIEW_WITHIN[event.urgency]),
                calendar.add_working_minutes(now, domain.PROCESS_WITHIN[event.urgency]),
            )


async def move(
    pool: asyncpg.Pool,
    outbox: Outbox,
    document_id: uuid.UUID,
    agency: str,
    wanted: str,
    reason: str | None,
    by: str | None,
    now: datetime,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, version FROM deliveries WHERE document_id = $1 AND recipient_agency = $2 FOR UPDATE",
            document_id,
            agency,
        )
        if row is None:
            raise NotFound(f"document {document_id} was not sent to {agency}")
        try:
            status = domain.receiver_move(row["status"], wanted)
        except domain.MoveRefused as exc:
            raise Conflict(str(exc)) from None
        if status == "refused" and not reason:
            raise Conflict("refusing a document needs a reason")
        await _record(conn, outbox, document_id, agency, row["version"], status, reason, by, now)
        if status == "done":
            await conn.execute(
                "UPDATE deliveries SET done_at = $3 WHERE document_id = $1 AND recipient_agency = $2",
                document_id,
                agency,
                now,
            )


async def open_file(
    pool: asyncpg.Pool, store: BlobStore, document_id: uuid.UUID, agency: str, username: str, now: datetime
) -> bytes:
    """The document for a receiving official, who is recorded as having viewed it. Only a
    received copy opens: nothing unsigned, refused or recalled is shown."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT d.status, doc.file_sha256 FROM deliveries d JOIN documents doc ON doc.id = d.document_id "
            "WHERE d.document_id = $1 AND d.recipient_agency = $2",
            document_id,
            agency,
        )
        if row is None:
            raise NotFound(f"document {document_id} was not sent to {agency}")
        if row["status"] in ("sending", "refused", "recalled"):
            raise Conflict(f"the document is {row['status']}: it cannot be opened")
        await conn.execute(
            "INSERT INTO views (document_id, recipient_agency, username, viewed_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            document_id,
            agency,
            username,
            now,
        )
        content = await file_content(conn, store, row["file_sha256"])
        if content is None:
            raise NotFound(f"the file of document {document_id} is not in the file store")
        return content


async def recall(
    pool: asyncpg.Pool, outbox: Outbox, document_id: uuid.UUID, agency: str, by: str | None, now: datetime
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        doc = await _own(conn, document_id, agency)
        deliveries = await conn.fetch(
            "SELECT recipient_agency, status FROM deliveries WHERE document_id = $1", document_id
        )
        if not domain.can_recall([d["status"] for d in deliveries]):
            raise Conflict("a recipient has finished with the document: it can no longer be recalled")
        await conn.execute("UPDATE documents SET status = 'recalled', updated_at = $2 WHERE id = $1", document_id, now)
        await _take_back_from_axis(conn, document_id, "recalled by the sender", now)
        for d in deliveries:
            if d["status"] != "refused":
                await _record(
                    conn, outbox, document_id, d["recipient_agency"], doc["version"], "recalled", None, by, now
                )


async def update(pool: asyncpg.Pool, outbox: Outbox, document_id: uuid.UUID, cmd, by: str | None, now: datetime) -> int:
    """A new version of the document (a corrected file), sent again to every recipient."""
    async with pool.acquire() as conn, conn.transaction():
        doc = await _own(conn, document_id, cmd.agency_code)
        stored = await _stored(conn, cmd.file_sha256)
        version = doc["version"] + 1
        summary = cmd.summary or doc["summary"]
        await conn.execute(
            "UPDATE documents SET version = $2, file_sha256 = $3, summary = $4, updated_at = $5 WHERE id = $1",
            document_id,
            version,
            stored.sha256,
            summary,
            now,
        )
        await _take_back_from_axis(conn, document_id, f"replaced by version {version}", now)
        recipients = [
            r["recipient_agency"]
            for r in await conn.fetch(
                "SELECT recipient_agency FROM deliveries WHERE document_id = $1 ORDER BY recipient_agency", document_id
            )
        ]
        await conn.execute(
            "UPDATE deliveries SET status = 'sending', version = $2, reason = NULL, updated_at = $3 "
            "WHERE document_id = $1",
            document_id,
            version,
            now,
        )
        await outbox.add(
            conn,
            DocumentSent(
                document_id=document_id,
                version=version,
                at=now,
                sender_agency=doc["sender_agency"],
                number=doc["number"],
                issued_on=doc["issued_on"],
                summary=summary,
                doc_type=doc["doc_type"],
                urgency=doc["urgency"],
                recipients=tuple(recipients),
                file=stored,
                dossier_code=doc["dossier_code"],
                sent_by=by,
            ),
            DOCUMENT,
        )
        return version


async def _own(conn, document_id: uuid.UUID, agency: str):
    doc = await conn.fetchrow("SELECT * FROM documents WHERE id = $1 FOR UPDATE", document_id)
    if doc is None:
        raise NotFound(f"no document {document_id}")
    if doc["sender_agency"] != agency:
        raise Conflict(f"document {document_id} was sent by {doc['sender_agency']}, not {agency}")
    if doc["status"] == "recalled":
        raise Conflict("the document was recalled")
    return doc


async def get(pool: asyncpg.Pool, document_id: uuid.UUID) -> dict:
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        doc = await conn.fetchrow(
            "SELECT id, sender_agency, number, issued_on, summary, doc_type, urgency, file_sha256, version, status, "
            "dossier_code, sent_by, created_at, updated_at FROM documents WHERE id = $1",
            document_id,
        )
        if doc is None:
            raise NotFound(f"no document {document_id}")
        deliveries = await conn.fetch(
            "SELECT recipient_agency, version, status, reason, updated_at FROM deliveries "
            "WHERE document_id = $1 ORDER BY recipient_agency",
            document_id,
        )
        statuses = await conn.fetch(
            "SELECT recipient_agency, version, status, code, reason, by_user, at FROM delivery_statuses "
            "WHERE document_id = $1 ORDER BY seq",
            document_id,
        )
        views = await conn.fetch(
            "SELECT recipient_agency, username, viewed_at FROM views WHERE document_id = $1 ORDER BY viewed_at",
            document_id,
        )
    by_agency: dict[str, list] = {}
    for s in statuses:
        by_agency.setdefault(s["recipient_agency"], []).append(
            {k: s[k] for k in ("version", "status", "code", "reason", "by_user", "at")}
        )
    return {
        **dict(doc),
        "deliveries": [
            {
                **dict(d),
                "label_vi": domain.LABELS_VI.get(d["status"], d["status"]),
                "statuses": by_agency.get(d["recipient_agency"], []),
                "views": [dict(v) for v in views if v["recipient_agency"] == d["recipient_agency"]],
            }
            for d in deliveries
        ],
    }


async def parties(pool: asyncpg.Pool, document_id: str) -> frozenset[str] | None:
    """The sender and the recipients: who may read a document."""
    try:
        key = uuid.UUID(document_id)
    except ValueError:
        return None
    rows = await pool.fetch(
        "SELECT sender_agency AS a FROM documents WHERE id = $1 "
        "UNION SELECT recipient_agency FROM deliveries WHERE document_id = $1",
        key,
    )
    return frozenset(r["a"] for r in rows) or None


async def flag_unviewed(pool: asyncpg.Pool, outbox: Outbox, now: datetime, batch: int = 200) -> int:
    """Copies nobody opened by their viewing deadline: flagged once (per version) with an
    event, like a late dossier. Safe with several instances (SKIP LOCKED)."""
    async with pool.acquire() as conn, conn.transaction():
        late = await conn.fetch(
            "SELECT d.document_id, d.recipient_agency, d.version, d.view_due_at, doc.number, doc.urgency "
            "FROM deliveries d JOIN documents doc ON doc.id = d.document_id "
            "WHERE d.view_overdue_at IS NULL AND d.view_due_at < $1 "
            "AND d.status IN ('arrived', 'accepted', 'assigned', 'in_processing') "
            "AND NOT EXISTS (SELECT 1 FROM views v WHERE v.document_id = d.document_id AND v.recipient_agency = d.recipient_agency) "
            "ORDER BY d.view_due_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
            now,
            batch,
        )
        for d in late:
            await conn.execute(
                "UPDATE deliveries SET view_overdue_at = $3 WHERE document_id = $1 AND recipient_agency = $2",
                d["document_id"],
                d["recipient_agency"],
                now,
            )
            await outbox.add(
                conn,
                DocumentViewOverdue(
                    document_id=d["document_id"],
                    version=d["version"],
                    at=now,
                    recipient_agency=d["recipient_agency"],
                    number=d["number"],
                    urgency=d["urgency"],
                    view_due_at=d["view_due_at"],
                ),
                DOCUMENT,
            )
        return len(late)


async def agency_documents(pool: asyncpg.Pool, agency: str, box: str, now: datetime, limit: int) -> list[dict]:
    """An agency's incoming copies (most urgent deadline first; unopened past the deadline
    flagged) or its outgoing documents (newest first)."""
    if box == "incoming":
        rows = await pool.fetch(
            "SELECT doc.id, doc.number, doc.summary, doc.urgency, doc.sender_agency, d.status, d.version, d.arrived_at, "
            "d.view_due_at, d.process_due_at, d.view_overdue_at, "
            "(SELECT min(viewed_at) FROM views v WHERE v.document_id = d.document_id AND v.recipient_agency = d.recipient_agency) "
            "AS first_viewed_at FROM deliveries d JOIN documents doc ON doc.id = d.document_id "
            "WHERE d.recipient_agency = $1 AND d.status NOT IN ('sending', 'refused') "
            "ORDER BY d.status = 'done', d.view_due_at NULLS LAST LIMIT $2",
            agency,
            limit,
        )
        return [
            {
                **dict(r),
                "label_vi": domain.LABELS_VI.get(r["status"], r["status"]),
                "unviewed_overdue": r["first_viewed_at"] is None
                and r["view_due_at"] is not None
                and r["view_due_at"] < now,
            }
            for r in rows
        ]
    rows = await pool.fetch(
        "SELECT doc.id, doc.number, doc.summary, doc.urgency, doc.status, doc.version, doc.created_at, "
        "array_agg(d.recipient_agency || ':' || d.status ORDER BY d.recipient_agency) AS deliveries "
        "FROM documents doc JOIN deliveries d ON d.document_id = doc.id WHERE doc.sender_agency = $1 "
        "GROUP BY doc.id ORDER BY doc.created_at DESC LIMIT $2",
        agency,
        limit,
    )
    return [
        {**dict(r), "deliveries": [dict(zip(("agency", "status"), x.split(":", 1))) for x in r["deliveries"]]}
        for r in rows
    ]


# ---------------------------------------------------------------- the national axis (other provinces)


def axis_id(document_id: uuid.UUID, agency: str, version: int) -> str:
    """The axis' idempotency key: one per copy and version, however often it is pushed."""
    return f"{document_id}:{agency}:v{version}"


# How long a copy claimed for a call to the axis stays out of other instances' reach. The call
# runs with no row locked (claim, commit, call, record): were the instance to die mid-call,
# another takes the copy up after this; the axis ignores a second push of the same id.
AXIS_LEASE = timedelta(seconds=60)


async def push_to_axis(
    pool: asyncpg.Pool, store: BlobStore, http, axis_url: str, key: str, now: datetime, batch: int = 20
) -> int:
    """Pushes due copies to the axis, each until it takes it: a failure waits longer each time
    (up to 5 minutes) and is recorded with its reason. Returns how many were taken."""
    async with pool.acquire() as conn, conn.transaction():
        due = await conn.fetch(
            "WITH claimed AS (UPDATE axis_deliveries a SET next_attempt_at = $1 + $3::interval "
            "  FROM documents doc WHERE doc.id = a.document_id AND (a.document_id, a.recipient_agency, a.version) IN ("
            "    SELECT a2.document_id, a2.recipient_agency, a2.version FROM axis_deliveries a2 "
            "    JOIN documents d2 ON d2.id = a2.document_id "
            "    WHERE a2.state = 'pending' AND a2.next_attempt_at <= $1 AND a2.version = d2.version AND d2.status = 'sent' "
            "    ORDER BY a2.next_attempt_at LIMIT $2 FOR UPDATE OF a2 SKIP LOCKED) "
            "  RETURNING a.*, doc.sender_agency, doc.number, doc.issued_on, doc.summary, doc.urgency, doc.file_sha256) "
            "SELECT c.* FROM claimed c",
            now,
            batch,
            AXIS_LEASE,
        )
    taken = 0
    for a in due:
        async with pool.acquire() as conn:
            content = await file_content(conn, store, a["file_sha256"])
        if content is None:
            async with pool.acquire() as conn:
                await _axis_later(conn, a, "the document's file is not in the file store", now, only_in="pending")
            continue
        body = {
            "id": axis_id(a["document_id"], a["recipient_agency"], a["version"]),
            "from": a["sender_agency"],
            "to": a["recipient_agency"],
            "number": a["number"],
            "issued_on": a["issued_on"].isoformat(),
            "summary": a["summary"],
            "urgency": a["urgency"],
            "sha256": a["file_sha256"],
            "pdf_base64": base64.b64encode(content).decode(),
        }
        _, error = await _axis_call(http, "POST", f"{axis_url}/api/edocs", key, json=body)
        async with pool.acquire() as conn:
            if error is not None:
                await _axis_later(conn, a, error, now, only_in="pending")
                continue
            taken += 1
            # Taken back while the push was on its way (withdrawn): the axis has it now, so
            # it is recalled there like any copy the axis took.
            await conn.execute(
                "UPDATE axis_deliveries SET pushed_at = $4, next_poll_at = $4, attempts = attempts + 1, last_error = NULL, "
                "  state = CASE state WHEN 'withdrawn' THEN 'recalling' ELSE 'pushed' END, "
                "  next_attempt_at = CASE state WHEN 'withdrawn' THEN $4 ELSE next_attempt_at END "
                "WHERE document_id = $1 AND recipient_agency = $2 AND version = $3 AND state IN ('pending', 'withdrawn')",
                a["document_id"],
                a["recipient_agency"],
                a["version"],
                now,
            )
    return taken + await _recall_at_axis(pool, http, axis_url, key, now, batch)


async def _axis_later(conn, a, error: str, now: datetime, *, only_in: str) -> None:
    """The axis did not take it: tried again after a wait that doubles, up to 5 minutes (if
    the copy is still ``only_in`` the state it was claimed in)."""
    wait = timedelta(seconds=min(300, 2 ** min(a["attempts"], 8)))
    await conn.execute(
        "UPDATE axis_deliveries SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5 "
        "WHERE document_id = $1 AND recipient_agency = $2 AND version = $3 AND state = $6",
        a["document_id"],
        a["recipient_agency"],
        a["version"],
        error,
        now + wait,
        only_in,
    )


async def _axis_call(http, method: str, url: str, key: str, **options) -> tuple[httpx.Response | None, str | None]:
    try:
        r = await http.request(method, url, headers={"X-Axis-Key": key}, timeout=10, **options)
    except httpx.HTTPError as exc:
        return None, f"the axis did not answer: {type(exc).__name__}"
    return r, None if r.status_code < 400 else f"the axis answered {r.status_code}: {r.text[:200]}"


async def _take_back_from_axis(conn, document_id: uuid.UUID, reason: str, now: datetime) -> None:
    """The document is recalled or replaced: its copies for other provinces not pushed yet never
    go, and those the axis took are recalled there. (A push on its way meanwhile finds its copy
    withdrawn when it lands, and turns it to recalling: see push_to_axis.)"""
    await conn.execute(
        "UPDATE axis_deliveries SET state = 'withdrawn', recall_reason = $2 WHERE document_id = $1 AND state = 'pending'",
        document_id,
        reason,
    )
    await conn.execute(
        "UPDATE axis_deliveries SET state = 'recalling', recall_reason = $3, attempts = 0, last_error = NULL, "
        "next_attempt_at = $2 WHERE document_id = $1 AND state = 'pushed'",
        document_id,
        now,
        reason,
    )


async def _recall_at_axis(pool: asyncpg.Pool, http, axis_url: str, key: str, now: datetime, batch: int) -> int:
    """Tells the axis of each copy taken back, until it confirms (an id it does not know has
    nothing to take back). Returns how many it confirmed. Claim, commit, call, record."""
    async with pool.acquire() as conn, conn.transaction():
        due = await conn.fetch(
            "UPDATE axis_deliveries SET next_attempt_at = $1 + $3::interval WHERE (document_id, recipient_agency, version) IN ("
            "  SELECT document_id, recipient_agency, version FROM axis_deliveries WHERE state = 'recalling' "
            "  AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING *",
            now,
            batch,
            AXIS_LEASE,
        )
    confirmed = 0
    for a in due:
        edoc = axis_id(a["document_id"], a["recipient_agency"], a["version"])
        r, error = await _axis_call(
            http, "POST", f"{axis_url}/api/edocs/{edoc}/recall", key, json={"reason": a["recall_reason"]}
        )
        if r is not None and r.status_code == 404:
            error = None
        async with pool.acquire() as conn:
            if error is not None:
                await _axis_later(conn, a, error, now, only_in="recalling")
                continue
            confirmed += 1
            await conn.execute(
                "UPDATE axis_deliveries SET state = 'recalled', last_error = NULL "
                "WHERE document_id = $1 AND recipient_agency = $2 AND version = $3 AND state = 'recalling'",
                a["document_id"],
                a["recipient_agency"],
                a["version"],
            )
    return confirmed


async def poll_axis(
    pool: asyncpg.Pool, outbox: Outbox, http, axis_url: str, key: str, now: datetime, batch: int = 50
) -> int:
    """Applies what the axis reports for each copy it took: by the axis' sequence, each new
    status once and in order, whatever order or repetition the axis answers with. A copy is
    asked again after 1 s, and twice as late each time nothing new came (up to 10 minutes).
    Claim, commit, call, record: no row is locked while the axis is asked."""
    async with pool.acquire() as conn, conn.transaction():
        pushed = await conn.fetch(
            "UPDATE axis_deliveries SET next_poll_at = $2 + $3::interval WHERE (document_id, recipient_agency, version) IN ("
            "  SELECT a.document_id, a.recipient_agency, a.version FROM axis_deliveries a "
            "  JOIN deliveries d ON d.document_id = a.document_id AND d.recipient_agency = a.recipient_agency "
            "  WHERE a.state = 'pushed' AND a.next_poll_at <= $2 AND a.version = d.version "
            "  AND d.status NOT IN ('refused', 'done', 'recalled') "
            "  ORDER BY a.next_poll_at LIMIT $1 FOR UPDATE OF a SKIP LOCKED) "
            "RETURNING document_id, recipient_agency, version",
            batch,
            now,
            AXIS_LEASE,
        )
    applied = 0
    for a in pushed:
        edoc = axis_id(a["document_id"], a["recipient_agency"], a["version"])
        r, error = await _axis_call(http, "GET", f"{axis_url}/api/edocs/{edoc}/statuses", key)
        try:
            reported = r.json()["statuses"] if r is not None and error is None and r.status_code == 200 else []
        except (ValueError, KeyError):
            reported = []  # asked again later, like a poll with nothing new
        async with pool.acquire() as conn, conn.transaction():
            # read again, locked: what another poll may have applied since the claim
            row = await conn.fetchrow(
                "SELECT seen_seq, poll_every_s FROM axis_deliveries "
                "WHERE document_id = $1 AND recipient_agency = $2 AND version = $3 AND state = 'pushed' FOR UPDATE",
                a["document_id"],
                a["recipient_agency"],
                a["version"],
            )
            if row is None:  # taken back meanwhile
                continue
            seen = row["seen_seq"]
            for st in sorted(
                {s["seq"]: s for s in reported if s.get("status") in domain.AXIS_STATUSES}.values(),
                key=lambda s: s["seq"],
            ):
                if st["seq"] <= seen:
                    continue
                applied += await _record(
                    conn,
                    outbox,
                    a["document_id"],
                    a["recipient_agency"],
                    a["version"],
                    st["status"],
                    None,
                    "national-axis",
                    now,
                )
                seen = st["seq"]
            every = 1 if seen != row["seen_seq"] else min(600, row["poll_every_s"] * 2)
            await conn.execute(
                "UPDATE axis_deliveries SET seen_seq = $4, poll_every_s = $5, next_poll_at = $6 "
                "WHERE document_id = $1 AND recipient_agency = $2 AND version = $3",
                a["document_id"],
                a["recipient_agency"],
                a["version"],
                seen,
                every,
                now + timedelta(seconds=every),
            )
    return applied
