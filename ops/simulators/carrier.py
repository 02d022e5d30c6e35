"""The public postal carrier's API (BCCI), as a strict counterpart would behave.

``POST /v1/shipments`` books a pickup or a delivery (an ``Idempotency-Key`` header makes a
retried booking return the first shipment), ``GET``/``DELETE /v1/shipments/{id}`` query and
cancel. Progress goes back to the shipment's ``callback_url`` as webhooks signed with
HMAC-SHA256 over ``"<timestamp>.<body>"`` (headers ``X-Carrier-Timestamp`` and
``X-Carrier-Signature``), with a delay between steps.

``POST /control`` sets {"down": bool, "delay_s": float, "duplicate": bool, "reorder": bool,
"fail_next": "reason"}; ``GET /control/bookings`` counts booking requests per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import uuid

import httpx
from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ops.identity import IDENTITIES, TokenRefused
from ops.simulators.common import make_app, run
from shared.clock import clock_from_env

log = logging.getLogger("carrier")
# The carrier lives in the platform's world: its timestamps come from the same (possibly shifted) clock.
CLOCK = clock_from_env()
app = make_app("carrier")
SECRET = os.environ.get("LGSP_CARRIER_WEBHOOK_SECRET", "local-carrier-secret").encode()
STATE = {"down": False, "delay_s": 0.3, "duplicate": False, "reorder": False, "fail_next": None}
SHIPMENTS: dict[str, dict] = {}
BY_KEY: dict[str, str] = {}
REQUESTS: dict[str, int] = {}
_tasks: set[asyncio.Task] = set()


class Booking(BaseModel):
    reference: str
    kind: str
    to_address: str
    callback_url: str
    contents: str | None = None  # what the parcel holds, printed on the slip


def sign(timestamp: str, body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@app.post("/v1/shipments", status_code=201)
async def book(b: Booking, idempotency_key: str = Header(...)):
    REQUESTS[idempotency_key] = REQUESTS.get(idempotency_key, 0) + 1
    if STATE["down"]:
        return JSONResponse({"error": "carrier unavailable"}, status_code=503)
    if idempotency_key in BY_KEY:
        return SHIPMENTS[BY_KEY[idempotency_key]]
    shipment = {
        "id": f"VN{uuid.uuid4().hex[:10].upper()}",
        "reference": b.reference,
        "kind": b.kind,
        "status": "accepted",
        "contents": b.contents,
    }
    SHIPMENTS[shipment["id"]] = shipment
    BY_KEY[idempotency_key] = shipment["id"]
    fail = STATE["fail_next"]
    STATE["fail_next"] = None
    task = asyncio.create_task(_progress(shipment, b.callback_url, fail))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return shipment


@app.get("/v1/shipments/{shipment_id}")
async def query(shipment_id: str):
    if shipment_id not in SHIPMENTS:
        return JSONResponse({"error": "no such shipment"}, status_code=404)
    return SHIPMENTS[shipment_id]


@app.delete("/v1/shipments/{shipment_id}")
async def cancel(shipment_id: str):
    s = SHIPMENTS.get(shipment_id)
    if s is None:
        return JSONResponse({"error": "no such shipment"}, status_code=404)
    if s["status"] not in ("accepted",):
        return JSONResponse({"error": f"cannot cancel a shipment that is {s['status']}"}, status_code=409)
    s["status"] = "cancelled"
    return s


async def _progress(shipment: dict, url: str, fail: str | None) -> None:
    steps = ["picked_up", "in_transit", "failed" if fail else "delivered"]
    if fail:
        steps.append("returned_to_sender")
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "shipment_id": shipment["id"],
            "reference": shipment["reference"],
            "status": st,
            "reason": fail if st in ("failed", "returned_to_sender") else None,
        }
        for st in steps
    ]
    if STATE["reorder"] and len(events) > 1:
        events[0], events[1] = events[1], events[0]
    async with httpx.AsyncClient(timeout=5, auth=IDENTITIES.carrier) as http:  # the carrier's own token
        for event in events:
            await asyncio.sleep(STATE["delay_s"])
            if shipment["status"] == "cancelled":
                return
            shipment["status"] = event["status"]
            event["at"] = CLOCK.now().timestamp()
            for _ in range(2 if STATE["duplicate"] else 1):
                await _deliver(http, url, event)


async def _deliver(http: httpx.AsyncClient, url: str, event: dict) -> None:
    body = json.dumps(event).encode()
    for attempt in range(20):  # a carrier retries its webhooks until they are taken
        ts = str(int(CLOCK.now().timestamp()))
        try:
            r = await http.post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "X-Carrier-Timestamp": ts,
                    "X-Carrier-Signature": sign(ts, body),
                },
            )
            if r.status_code < 500 and r.status_code not in (401, 403):  # refused access may be a token refreshed late
                return
        except (httpx.HTTPError, TokenRefused):  # postal or the identity provider is away: retry
            pass
        await asyncio.sleep(min(0.2 * 2**attempt, 5))
    log.warning("webhook for %s gave up", event["shipment_id"])


class Control(BaseModel):
    down: bool = False
    delay_s: float = 0.3
    duplicate: bool = False
    reorder: bool = False
    fail_next: str | None = None


@app.post("/control")
async def control(c: Control) -> dict:
    STATE.update(c.model_dump())
    return STATE


@app.get("/control/bookings")
async def bookings() -> dict:
    by_reference: dict[str, int] = {}
    for sh in SHIPMENTS.values():
        by_reference[sh["reference"]] = by_reference.get(sh["reference"], 0) + 1
    return {"requests": REQUESTS, "shipments": len(SHIPMENTS), "by_reference": by_reference}


if __name__ == "__main__":
    run(app, 8091)
