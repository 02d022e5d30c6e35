"""Postal's HTTP routes: the carrier's webhooks, and shipments for operators."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from services.postal import handlers
from services.postal.schemas import CarrierReport
from services.postal.webhooks import WebhookRefused, verify
from shared.deps import RuntimeDep
from shared.events import describe_validation
from shared.http import problem

router = APIRouter(prefix="/v1")


@router.post(
    "/carrier/webhooks",
    tags=["carrier"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CarrierReport.model_json_schema()}},
        }
    },
)
async def carrier_webhook(request: Request, rt: RuntimeDep):
    """The carrier reports a shipment's progress. The raw body is read here (its HMAC is over
    the exact bytes) and validated against ``CarrierReport`` after the signature."""
    body = await request.body()
    try:
        verify(
            rt.settings.secrets("carrier_webhook_secret"),
            request.headers.get("X-Carrier-Timestamp"),
            request.headers.get("X-Carrier-Signature"),
            body,
            rt.settings.webhook_max_skew_s,
            rt.clock.now().timestamp(),
        )
    except WebhookRefused as exc:
        return problem(401, f"webhook refused: {exc}")
    try:
        report = CarrierReport.model_validate_json(body)
    except ValidationError as exc:
        bad_json = any(e["type"] == "json_invalid" for e in exc.errors())
        return problem(400 if bad_json else 422, "webhook body is not a carrier report: " + describe_validation(exc))
    outcome = await handlers.apply_webhook(rt.pool, rt.outbox, report, rt.clock.now())
    if outcome == "unknown":
        return problem(404, "no shipment with that reference")
    return {"result": outcome}


@router.get("/dossiers/{dossier_id}/shipments", tags=["shipments"])
async def shipments(dossier_id: uuid.UUID, rt: RuntimeDep):
    rows = await rt.pool.fetch(
        "SELECT id, kind, status, contents, carrier_ref, attempts, last_error, created_at, updated_at FROM shipments "
        "WHERE dossier_id = $1 ORDER BY created_at",
        dossier_id,
    )
    return [dict(r) for r in rows]


OPEN_STATUSES = ("booking", "accepted", "picked_up", "in_transit")


@router.get("/shipments/open", tags=["shipments"])
async def open_shipments(
    rt: RuntimeDep, limit: int = Query(50, ge=1, le=500, description="At most this many, oldest first")
):
    """What the carrier still has to do: counts per kind and status, and the oldest open
    shipments (no addresses)."""
    pool = rt.pool
    counts = await pool.fetch(
        "SELECT kind, status, count(*) AS n FROM shipments WHERE status = ANY($1::text[]) "
        "GROUP BY kind, status ORDER BY kind, status",
        list(OPEN_STATUSES),
    )
    oldest = await pool.fetch(
        "SELECT dossier_code, kind, status, carrier_ref, attempts, last_error, created_at, updated_at FROM shipments "
        "WHERE status = ANY($1::text[]) ORDER BY created_at LIMIT $2",
        list(OPEN_STATUSES),
        limit,
    )
    return {"counts": [dict(r) for r in counts], "oldest": [dict(r) for r in oldest]}
