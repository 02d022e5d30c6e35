"""An online payment platform (the national portal's payment platform or a province gateway),
as a strict stand-in. Every call from the merchant is signed: ``X-Merchant`` and
``X-Signature``, hex HMAC-SHA256 with the merchant's secret over ``<method>\\n<path>\\n<body>``.

- ``POST /v1/orders`` {reference, amount_vnd, description, callback_url} with an
  ``Idempotency-Key``: one order per key (the same key again returns the same order, never a
  second charge).
- ``GET /v1/orders/{order_id}``: its status (pending, paid, cancelled, refunded), receipt number and times.
- ``POST /v1/orders/{order_id}/refund``: refunds a paid order once (again: the same answer).
- ``POST /v1/orders/{order_id}/cancel``: a pending order can no longer be paid; 409 with the
  order once it is paid (the merchant refunds it instead).
- When the citizen pays (``POST /control/pay/{order_id}``), the order gets an electronic receipt
  number and the merchant's callback URL is told, signed the same way with ``X-Timestamp``
  added (``<timestamp>\\n<body>``), unless callbacks are dropped; ``duplicate_callbacks`` sends
  each one that many extra times.
- ``POST /control`` {down, drop_callbacks, duplicate_callbacks, create_delay_s}; ``GET
  /control/orders`` (and how many creations are being served).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time

import httpx
from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ops.simulators.common import make_app, run
from shared.settings import LOCAL_SECRETS

app = make_app("payment")
MERCHANTS = {"lgsp-ninh-binh": LOCAL_SECRETS["payment_secret"]}
STATE: dict = {"down": False, "drop_callbacks": False, "duplicate_callbacks": 0, "create_delay_s": 0.0}
CREATING: dict[str, int] = {"now": 0}  # order creations being served at this moment
ORDERS: dict[str, dict] = {}
BY_KEY: dict[str, str] = {}
_numbers = itertools.count(1)


def signature(secret: str, text: bytes) -> str:
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


async def _refused(request: Request, merchant: str, given: str) -> JSONResponse | None:
    """Why a merchant's call is not served (the platform down, or not signed by a merchant it
    knows), or None."""
    if STATE["down"]:
        return JSONResponse({"error": "unavailable"}, status_code=503)
    secret = MERCHANTS.get(merchant)
    body = await request.body()
    expected = signature(secret or "", f"{request.method}\n{request.url.path}\n".encode() + body)
    if not secret or not hmac.compare_digest(expected, given):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    return None


class Order(BaseModel):
    reference: str = Field(min_length=1, max_length=100)
    amount_vnd: int = Field(gt=0, le=100_000_000)
    description: str = Field(max_length=300)
    callback_url: str = Field(max_length=500)


def _public(order: dict) -> dict:
    return {k: v for k, v in order.items() if k not in ("callback_url", "merchant")}


@app.post("/v1/orders")
async def create(
    request: Request, x_merchant: str = Header(""), x_signature: str = Header(""), idempotency_key: str = Header("")
):
    if refused := await _refused(request, x_merchant, x_signature):
        return refused
    merchant = x_merchant
    if not 1 <= len(idempotency_key) <= 100:
        return JSONResponse({"error": "Idempotency-Key required"}, status_code=400)
    key = f"{merchant}/{idempotency_key}"
    o = Order.model_validate_json(await request.body())
    CREATING["now"] += 1
    try:
        await asyncio.sleep(STATE["create_delay_s"])  # a slow platform: the merchant waits on it
    finally:
        CREATING["now"] -= 1
    # the key is looked up after the last wait, with nothing awaited until the order is kept:
    # two calls with one key at once (two intake instances) still make one order
    if key in BY_KEY:
        return _public(ORDERS[BY_KEY[key]])
    order_id = f"PAY{next(_numbers):04d}{secrets.token_hex(4).upper()}"  # never reused, even after a restart
    ORDERS[order_id] = {
        "order_id": order_id,
        "reference": o.reference,
        "amount_vnd": o.amount_vnd,
        "description": o.description,
        "status": "pending",
        "pay_url": f"{str(request.base_url).rstrip('/')}/pay/{order_id}",
        "receipt_no": None,
        "paid_at": None,
        "refunded_at": None,
        "charges": 0,
        "callback_url": o.callback_url,
        "merchant": merchant,
    }
    BY_KEY[key] = order_id
    return _public(ORDERS[order_id])


async def _merchants_order(request: Request, order_id: str, merchant: str, given: str) -> dict | JSONResponse:
    """The order a signed merchant's call is about, or why the call is not served (the platform
    down, the call not signed, no such order)."""
    if refused := await _refused(request, merchant, given):
        return refused
    return ORDERS.get(order_id) or JSONResponse({"error": "no such order"}, status_code=404)


@app.get("/v1/orders/{order_id}")
async def status(order_id: str, request: Request, x_merchant: str = Header(""), x_signature: str = Header("")):
    order = await _merchants_order(request, order_id, x_merchant, x_signature)
    return order if isinstance(order, JSONResponse) else _public(order)


@app.post("/v1/orders/{order_id}/refund")
async def refund(order_id: str, request: Request, x_merchant: str = Header(""), x_signature: str = Header("")):
    order = await _merchants_order(request, order_id, x_merchant, x_signature)
    if isinstance(order, JSONResponse):
        return order
    if order["status"] == "pending":
        return JSONResponse({"error": "not paid"}, status_code=409)
    if order["status"] == "paid":
        order.update(status="refunded", refunded_at=int(time.time()))
    return _public(order)


@app.post("/v1/orders/{order_id}/cancel")
async def cancel(order_id: str, request: Request, x_merchant: str = Header(""), x_signature: str = Header("")):
    """A pending order cancelled (the citizen can no longer pay it); 409 once it is paid."""
    order = await _merchants_order(request, order_id, x_merchant, x_signature)
    if isinstance(order, JSONResponse):
        return order
    if order["status"] == "pending":
        order["status"] = "cancelled"
    if order["status"] != "cancelled":
        return JSONResponse({"error": f"the order is {order['status']}", **_public(order)}, status_code=409)
    return _public(order)


@app.post("/control/pay/{order_id}")
async def pay(order_id: str):
    """The citizen pays on the platform's page."""
    order = ORDERS.get(order_id)
    if order is None:
        return JSONResponse({"error": "no such order"}, status_code=404)
    if order["status"] == "cancelled":
        return JSONResponse({"error": "the order was cancelled"}, status_code=409)
    if order["status"] == "pending":
        order.update(status="paid", receipt_no=f"BL-{order_id[3:]}", paid_at=int(time.time()))
        order["charges"] += 1
    if not STATE["drop_callbacks"]:
        body = json.dumps(_public(order)).encode()
        ts = str(int(time.time()))
        secret = MERCHANTS[order["merchant"]]
        headers = {
            "Content-Type": "application/json",
            "X-Timestamp": ts,
            "X-Signature": signature(secret, ts.encode() + b"\n" + body),
        }
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(1 + STATE["duplicate_callbacks"]):
                try:
                    await http.post(order["callback_url"], content=body, headers=headers)
                except httpx.HTTPError:
                    pass  # a lost callback: the merchant polls
    return _public(order)


class Control(BaseModel):
    down: bool | None = None
    drop_callbacks: bool | None = None
    duplicate_callbacks: int | None = Field(None, ge=0, le=10)
    create_delay_s: float | None = Field(None, ge=0, le=30)


@app.post("/control")
async def control(c: Control):
    STATE.update({k: v for k, v in c.model_dump().items() if v is not None})
    return STATE


@app.get("/control/orders")
async def orders():
    return {"orders": [_public(o) for o in ORDERS.values()], "creating": CREATING["now"]}


if __name__ == "__main__":
    run(app, 8096)
