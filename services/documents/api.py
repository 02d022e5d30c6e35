"""The documents service's HTTP routes: upload a signed PDF, send it, follow its deliveries;
receiving officials move their copy through its statuses and open it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.documents import domain, handlers, report
from services.documents.schemas import (
    DocumentCreated,
    FileStored,
    MoveDelivery,
    SendDocument,
    SenderAct,
    UpdateDocument,
)
from shared.access import Caller, Resource
from shared.deps import CallerDep, ReferenceDep, RuntimeDep
from shared.http import AgencyCode, problem

router = APIRouter(prefix="/v1", tags=["documents"])
DocumentId = Annotated[uuid.UUID, Path(description="The document's id, as sending returned it")]


async def document_resource(request: Request, key: str) -> Resource | None:
    agencies = await handlers.parties(request.app.state.runtime.pool, key)
    return Resource(agencies=agencies) if agencies else None


def _who(caller: Caller) -> str | None:
    return caller.username


@router.post(
    "/documents/files",
    status_code=201,
    response_model=FileStored,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary", "maxLength": 20_000_000}}},
        }
    },
)
async def upload_file(request: Request, rt: RuntimeDep, caller: CallerDep):
    """The signed PDF, stored once under its SHA-256 (uploading it again changes nothing).
    Sending a document then names it by that hash: events carry the hash, never the bytes."""
    limit, quota = rt.settings.documents_max_file_bytes, rt.settings.documents_agency_quota_bytes
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/pdf":
        return problem(415, "send the document as application/pdf")
    # read as it arrives: hashed on the way, refused as soon as it passes the limit
    digest, chunks, size = hashlib.sha256(), [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return problem(413, f"the file is larger than {limit} bytes")
        digest.update(chunk)
        chunks.append(chunk)
    content = b"".join(chunks)
    if not content.startswith(b"%PDF-"):
        return problem(422, "the file is not a PDF")
    stored = await handlers.store_file(
        rt.pool,
        rt.files("documents"),
        content,
        "application/pdf",
        _who(caller),
        rt.clock.now(),
        sha=digest.hexdigest(),
        agency=caller.agency,
        quota_bytes=quota,
    )
    return FileStored(sha256=stored.sha256, size=stored.size, location=stored.location)


@router.post("/documents", status_code=201, response_model=DocumentCreated)
async def send_document(cmd: SendDocument, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    """Registers an outgoing document (văn bản đi) and sends it to its recipients. Each
    recipient's copy arrives only once both signatures check out on its side."""
    now = rt.clock.now()
    _, unknown = domain.split_recipients(cmd.recipients, ref.catalogue.agencies)
    if unknown:
        return problem(
            422,
            f"unknown agencies: {', '.join(sorted(unknown))} (neither of this province nor an agency code "
            "of another province, which the national document-exchange axis reaches)",
            [{"field": "recipients", "reason": "unknown agency"}],
        )
    document_id = await handlers.send(rt.pool, rt.outbox, cmd, _who(caller), now)
    return DocumentCreated(id=document_id, version=1, at=now)


@router.get("/documents/{document_id}")
async def get_document(document_id: DocumentId, rt: RuntimeDep):
    """The document and, per recipient, every status it went through, in order."""
    return await handlers.get(rt.pool, document_id)


@router.post("/documents/{document_id}/recall")
async def recall_document(document_id: DocumentId, cmd: SenderAct, rt: RuntimeDep, caller: CallerDep):
    await handlers.recall(rt.pool, rt.outbox, document_id, cmd.agency_code, _who(caller), rt.clock.now())
    return {"status": "recalled"}


@router.post("/documents/{document_id}/update")
async def update_document(document_id: DocumentId, cmd: UpdateDocument, rt: RuntimeDep, caller: CallerDep):
    """A corrected file (signed again): every recipient gets the new version, checked again."""
    version = await handlers.update(rt.pool, rt.outbox, document_id, cmd, _who(caller), rt.clock.now())
    return {"version": version}


@router.post("/documents/{document_id}/deliveries/{agency_code}/status")
async def move_delivery(
    document_id: DocumentId, agency_code: AgencyCode, cmd: MoveDelivery, rt: RuntimeDep, caller: CallerDep
):
    """The receiving agency accepts or refuses its copy, assigns it, processes it, finishes it."""
    await handlers.move(
        rt.pool, rt.outbox, document_id, agency_code, cmd.status, cmd.reason, _who(caller), rt.clock.now()
    )
    return {"status": cmd.status}


@router.get(
    "/documents/{document_id}/deliveries/{agency_code}/file",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def open_document(document_id: DocumentId, agency_code: AgencyCode, rt: RuntimeDep, caller: CallerDep):
    """The document as received, for an official of the receiving agency, who is recorded as
    having viewed it."""
    content = await handlers.open_file(
        rt.pool, rt.files("documents"), document_id, agency_code, _who(caller) or "?", rt.clock.now()
    )
    return Response(content, media_type="application/pdf")


@router.get("/reports/documents", tags=["operations"])
async def monthly_report(
    request: Request,
    rt: RuntimeDep,
    ref: ReferenceDep,
    caller: CallerDep,
    month: str = Query(pattern=r"^20\d\d-(0[1-9]|1[0-2])$", max_length=7, description="YYYY-MM", examples=["2026-11"]),
):
    """Per agency and per official for the month: documents received, viewed, viewed on time,
    finished on time, the viewing rate (under 75% flagged); per sender, outgoing documents sent
    electronically and signed with both signatures."""
    year, mon = (int(x) for x in month.split("-"))
    whole = await report.monthly(rt.pool, ref, date(year, mon, 1), rt.clock.now(), request.app.state.staff)
    if "operator" in caller.roles:
        return whole
    # a manager sees their own area: their agency and the agencies below it
    return report.within(whole, ref.catalogue.area(caller.agency) if caller.agency else frozenset())


@router.get("/agencies/{agency_code}/documents")
async def agency_documents(
    agency_code: AgencyCode,
    rt: RuntimeDep,
    box: str = Query(
        "incoming",
        pattern="^(incoming|outgoing)$",
        max_length=8,
        description="incoming (văn bản đến) or outgoing (văn bản đi)",
    ),
    limit: int = Query(200, ge=1, le=1000),
):
    """An agency's incoming copies, the most pressing viewing deadline first, those unopened
    past it flagged; or its outgoing documents with each recipient's status."""
    return await handlers.agency_documents(rt.pool, agency_code, box, rt.clock.now(), limit)
