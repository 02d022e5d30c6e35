"""Intake's HTTP routes: translate the wire format into commands and call the handlers."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request, Response

from shared.http import problem
from services.intake import handlers
from services.intake.schemas import DossierOut, SubmitDossier

router = APIRouter(prefix="/v1", tags=["dossiers"])


@router.post("/dossiers", response_model=DossierOut, status_code=201,
             responses={200: {"description": "A retry with a known Idempotency-Key: the same dossier"}})
async def submit_dossier(
    cmd: SubmitDossier, request: Request, response: Response,
    idempotency_key: str | None = Header(None, max_length=200, description="Makes a retried submission return the same dossier"),
) -> DossierOut:
    rt = request.app.state.runtime
    dossier, created = await handlers.submit_dossier(
        cmd, pool=rt.pool, outbox=rt.outbox, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = 200
    return dossier


@router.get("/dossiers/{code}", response_model=DossierOut)
async def get_dossier(code: str, request: Request):
    dossier = await handlers.get_dossier(code, pool=request.app.state.runtime.pool)
    if dossier is None:
        return problem(404, f"no dossier with code {code!r}")
    return dossier
