"""Notify's HTTP routes for operators: what was sent about a dossier (addresses masked)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.deps import RuntimeDep
from shared.http import DossierCode
from shared.telemetry import mask_personal_data

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.get("/dossiers/{code}/notifications")
async def notifications(code: DossierCode, rt: RuntimeDep):
    rows = await rt.pool.fetch(
        "SELECT event_type, channel, status, attempts, address, subject, created_at, sent_at, last_error "
        "FROM notifications WHERE dossier_code = $1 ORDER BY created_at, position",
        code,
    )
    pd = rt.settings.personal_data
    return [
        {
            **dict(r),
            "address": mask_personal_data(
                (r["address"] if r["channel"] == "email" else pd.open(r["address"], "phone")) or ""
            ),
        }
        for r in rows
    ]
