"""Routing's HTTP routes for agencies' systems and operators."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from shared.http import problem

router = APIRouter(prefix="/v1", tags=["dossiers"])


@router.get("/dossiers/{dossier_id}")
async def get_dossier(dossier_id: uuid.UUID, request: Request):
    row = await request.app.state.runtime.pool.fetchrow(
        "SELECT dossier_id, code, procedure_code, agency_code, status, received_at, recorded_at, trace_id "
        "FROM dossiers WHERE dossier_id = $1", dossier_id,
    )
    if row is None:
        return problem(404, f"routing has no dossier {dossier_id}")
    return dict(row)
