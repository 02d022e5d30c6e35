"""Routing's HTTP routes: agencies' systems act on the step they hold; operators read
dossiers, work queues and timelines."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request, Response

from services.routing import handlers, store
from services.routing.schemas import (
    AcceptStep,
    ForwardStep,
    PublicApology,
    RequestSupplement,
    Resolve,
    ReturnResult,
    StepCommand,
    StopProcessing,
)
from shared.access import Caller, Resource
from shared.deps import CallerDep, ReferenceDep, RuntimeDep, actor_of
from shared.dossier_files import list_files, open_file
from shared.events import Withdraw
from shared.files import UPLOAD_BODY, FileOut, FileStored
from shared.http import AgencyCode, DossierCode, FileHash, problem
from shared.recent import Recent
from shared.reference import Reference
from shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["dossiers"])


ROUTES_KEPT = 10_000


async def dossier_resource(request: Request, code: str) -> Resource | None:
    """For the access policy: every agency the dossier's route passes through. A route is
    fixed when the workflow starts, so the answer is kept for the dossiers acted on lately
    (a request then costs no read of its own)."""
    kept: Recent[str, Resource] = request.app.state.route_agencies
    if (agencies := kept.get(code)) is not None:
        return agencies
    rows = await request.app.state.runtime.pool.fetch(
        "SELECT d.receiving_agency, s.agency_code FROM dossiers d LEFT JOIN steps s ON s.dossier_id = d.dossier_id "
        "WHERE d.code = $1",
        code,
    )
    if not rows:
        return None
    return kept.put(
        code, Resource(frozenset({rows[0]["receiving_agency"]} | {r["agency_code"] for r in rows if r["agency_code"]}))
    )


async def _act(rt: ServiceRuntime, ref: Reference, caller: Caller, code: str, cmd):
    """Run an action in the dossier's own trace (see handlers.act), and read the result back
    in the same transaction: one commit per action."""
    actor = actor_of(caller) if isinstance(cmd, StepCommand) else None
    async with rt.pool.acquire() as conn, conn.transaction():
        await handlers.act(
            conn,
            code,
            cmd,
            outbox=rt.outbox,
            ref=ref,
            now=rt.clock.now(),
            actor=actor,
            extension_days=rt.settings.apology_extension_days,
        )
        return await _dossier(conn, code)


@router.post("/dossiers/{code}/accept")
async def accept(code: DossierCode, cmd: AcceptStep, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/forward")
async def forward(code: DossierCode, cmd: ForwardStep, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/request-supplement")
async def request_supplement(
    code: DossierCode, cmd: RequestSupplement, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep
):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/resolve")
async def resolve(code: DossierCode, cmd: Resolve, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/return")
async def return_result(code: DossierCode, cmd: ReturnResult, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/stop")
async def stop(code: DossierCode, cmd: StopProcessing, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


@router.post("/dossiers/{code}/withdraw")
async def withdraw(code: DossierCode, cmd: Withdraw, rt: RuntimeDep, ref: ReferenceDep, caller: CallerDep):
    return await _act(rt, ref, caller, code, cmd)


async def _dossier(conn, code: str):
    """The dossier with its steps and documents, read on ``conn`` (inside the caller's
    transaction) in one round trip."""
    d = await conn.fetchrow(
        "SELECT dossier_id, code, procedure_code, result_kind, receiving_agency, status, outcome, current_step, received_at, "
        "due_at, paused_at, apologies, trace_id, "
        f"  ARRAY(SELECT s FROM (SELECT {', '.join(STEP_FIELDS)} FROM steps WHERE dossier_id = d.dossier_id "
        "        ORDER BY idx) s) AS steps, "
        f"  ARRAY(SELECT x FROM (SELECT {', '.join(DOCUMENT_FIELDS)} FROM dossier_documents WHERE dossier_id = d.dossier_id "
        "        ORDER BY sent_at, number) x) AS documents "
        "FROM dossiers d WHERE code = $1",
        code,
    )
    if d is None:
        return problem(404, f"routing has no dossier {code!r}")
    return {
        **dict(d),
        "steps": [dict(zip(STEP_FIELDS, s)) for s in d["steps"]],
        "documents": [dict(zip(DOCUMENT_FIELDS, x)) for x in d["documents"]],
    }


# the columns of the rows _dossier reads as arrays: its query selects them in this order
STEP_FIELDS = store.STEP_FIELDS
DOCUMENT_FIELDS = ("document_id", "number", "doc_type", "sender_agency", "version", "state", "reason", "sent_at")


@router.get("/dossiers/{code}")
async def get_dossier(code: DossierCode, rt: RuntimeDep):
    async with rt.pool.acquire() as conn, conn.transaction(readonly=True):
        return await _dossier(conn, code)


@router.get("/dossiers/{code}/timeline")
async def timeline(code: DossierCode, rt: RuntimeDep):
    """The process-control timeline: every hop, across services, from the events themselves."""
    rows = await rt.pool.fetch(
        "SELECT at, event_type, source, agency_code, step_index, step_due_at, late, trace_id, summary "
        "FROM timeline WHERE dossier_code = $1 ORDER BY at, seq",
        code,
    )
    if not rows:
        return problem(404, f"no timeline for {code!r}")
    return [dict(r) for r in rows]


@router.get("/agencies/{agency_code}/dossiers")
async def work_queue(agency_code: AgencyCode, rt: RuntimeDep):
    """Dossiers whose current step this agency holds."""
    rows = await rt.pool.fetch(
        "SELECT d.code, d.status, s.name AS step, s.status AS step_status, s.due_at AS step_due_at, d.due_at "
        "FROM dossiers d JOIN steps s ON s.dossier_id = d.dossier_id AND s.idx = d.current_step "
        "WHERE s.agency_code = $1 AND d.status IN ('processing', 'supplement_requested', 'resolved') "
        "ORDER BY s.due_at LIMIT 500",
        agency_code,
    )
    return [dict(r) for r in rows]


@router.get("/dossiers/{code}/files", response_model=list[FileOut], tags=["files"])
async def dossier_files(code: DossierCode, rt: RuntimeDep):
    """The dossier's files (components, supplements, result), for the agencies on its route."""
    return await list_files(rt, "dossier_id", code)


@router.get("/dossiers/{code}/files/{sha256}", tags=["files"], response_class=Response)
async def dossier_file(code: DossierCode, sha256: FileHash, rt: RuntimeDep, caller: CallerDep):
    """One of the dossier's files, streamed; the opening is recorded on the dossier's timeline."""
    return await open_file(rt, "dossier_id", code, sha256, caller)


@router.post("/files", status_code=201, response_model=FileStored, openapi_extra=UPLOAD_BODY, tags=["files"])
async def upload_result_scan(request: Request, rt: RuntimeDep, caller: CallerDep):
    """The scan of a paper result, before resolving with it (``result_document.sha256``): kept
    for the citizen with the dossier. Judged by its bytes (PDF, JPEG, PNG)."""
    if caller.agency is None:
        return problem(403, "an official uploads for the agency in their token, and this token names none")
    blob = await rt.files().put(request.stream(), rt.settings.file_max_bytes)
    await rt.pool.execute(
        "INSERT INTO uploads (sha256, agency_code, size, media_type, uploaded_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (sha256, agency_code) DO UPDATE SET uploaded_at = EXCLUDED.uploaded_at",
        blob.sha256,
        caller.agency,
        blob.size,
        blob.media_type,
        rt.clock.now(),
    )
    return FileStored(sha256=blob.sha256, size=blob.size, media_type=blob.media_type)


@router.get("/public/apologies", response_model=list[PublicApology], tags=["citizens"])
async def public_apologies(
    rt: RuntimeDep,
    ref: ReferenceDep,
    limit: int = Query(50, ge=1, le=200, description="How many, newest first"),
    before: datetime | None = Query(None, description="Only those made before this moment (the next page)"),
):
    """The apologies of late dossiers, published (Decision 766's publicity; seed 004 asks for
    the apology to be made public, not only sent to the citizen). No personal data."""
    rows = await rt.pool.fetch(
        "SELECT t.at, t.dossier_code, t.agency_code, t.summary, d.procedure_code FROM timeline t "
        "JOIN dossiers d ON d.dossier_id = t.dossier_id "
        "WHERE t.event_type = 'vn.lgsp.dossier.apologised.v1' AND ($2::timestamptz IS NULL OR t.at < $2) "
        "ORDER BY t.at DESC, t.seq DESC LIMIT $1",
        limit,
        before,
    )
    catalogue = ref.catalogue

    def named(code: str, table) -> str:
        found = table.get(code)
        return found.name if found else code

    return [
        PublicApology(
            at=r["at"],
            dossier_code=r["dossier_code"],
            procedure_name=named(r["procedure_code"], catalogue.procedures),
            agency_code=r["agency_code"] or "",
            agency_name=named(r["agency_code"] or "", catalogue.agencies),
            apology=r["summary"],
        )
        for r in rows
    ]
