"""Postal's HTTP routes: the carrier's webhooks, and shipments for operators."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from shared.http import problem
from services.postal import handlers
from services.postal.webhooks import WebhookRefused, verify

router = APIRouter(prefix="/v1")


@router.post("/carrier/webhooks", tags=["carrier"])
async def carrier_webhook(request: Request):
    rt = request.app.state.runtime
    body = await request.body()
    try:
        verify(rt.settings.carrier_webhook_secret, request.headers.get("X-Carrier-Timestamp"),
               request.headers.get("X-Carrier-Signature"), body, rt.settings.webhook_max_skew_s,
               rt.clock.now().timestamp())
    except WebhookRefused as exc:
        return problem(401, f"webhook refused: {exc}")
    try:
        payload = json.loads(body)
        outcome = await handlers.apply_webhook(rt.pool, rt.outbox, payload, rt.clock.now())
    except (ValueError, TypeError) as exc:
        return problem(400, str(exc))
    if outcome == "unknown":
        return problem(404, "no shipment with that reference")
    return {"result": outcome}


@router.get("/dossiers/{dossier_id}/shipments", tags=["shipments"])
async def shipments(dossier_id: str, request: Request):
    rows = await request.app.state.runtime.pool.fetch(
        "SELECT id, kind, status, carrier_ref, attempts, last_error, created_at, updated_at FROM shipments "
        "WHERE dossier_id::text = $1 ORDER BY created_at", dossier_id,
    )
    return [dict(r) for r in rows]
