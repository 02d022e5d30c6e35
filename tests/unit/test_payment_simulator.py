"""The payment platform's stand-in never reuses an order id, even after a restart: the demo's
database outlives the simulator, and a reused id once stopped intake's payment worker. One
idempotency key makes one order, even from two calls at once."""

from __future__ import annotations

import asyncio
import importlib
import json

import httpx

from ops.simulators import payment
from shared.settings import LOCAL_SECRETS


async def _order(app, key: str) -> dict:
    body = json.dumps(
        {
            "reference": key,
            "amount_vnd": 50_000,
            "description": "Lệ phí đăng ký",
            "callback_url": "http://127.0.0.1:9/x",
        }
    ).encode()
    signed = payment.signature(LOCAL_SECRETS["payment_secret"], b"POST\n/v1/orders\n" + body)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payment") as client:
        r = await client.post(
            "/v1/orders",
            content=body,
            headers={"X-Merchant": "lgsp-ninh-binh", "X-Signature": signed, "Idempotency-Key": key},
        )
    assert r.status_code == 200, r.text
    return r.json()


async def test_order_ids_are_not_reused_after_a_restart_and_a_key_makes_one_order():
    first = await _order(payment.app, "dossier-1")
    assert (await _order(payment.app, "dossier-1"))["order_id"] == first["order_id"]  # the same key: one order
    restarted = importlib.reload(payment)  # a new process: empty state, the counter from 1 again
    again = await _order(restarted.app, "dossier-2")
    assert again["order_id"] != first["order_id"]


async def test_two_calls_at_once_with_one_key_make_one_order():
    """Two intake instances' workers may ask for the same dossier's order at the same moment:
    the three-broker chaos run found two orders for one dossier when the stand-in yielded
    between looking the key up and keeping the order."""
    first, second = await asyncio.gather(_order(payment.app, "dossier-at-once"), _order(payment.app, "dossier-at-once"))
    assert first["order_id"] == second["order_id"]
    assert [o["reference"] for o in payment.ORDERS.values()].count("dossier-at-once") == 1
