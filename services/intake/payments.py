"""Online payment of a dossier's fees (lệ phí, phí) through the payment platform
(ops/simulators/payment.py stands in for it).

An online dossier of a procedure with a fee is received "awaiting payment": the national
portal is told (status 6, financial obligation), and routing hears of it only once it is paid,
so it is never processed unpaid. Its time limit runs from the payment.

- A worker creates the payment order, with the dossier's id as the idempotency key: however
  often it is retried, the citizen has one order and is charged once.
- The platform's signed callback and our own polling (either may be lost) both end in
  ``settle``. It moves the payment from pending to paid in one conditional update, so only one
  of them emits the ``DossierReceived`` that was held back, with the electronic receipt kept.
- A dossier refused or withdrawn after payment is refunded by the worker, again once.
- A dossier withdrawn before it was paid never reached routing: intake ends it itself, and the
  worker cancels its order; an order the citizen paid in the meantime is refunded instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timedelta

import asyncpg
import httpx

from shared.events import DossierReceived
from shared.outbox import Outbox
from shared.reference import Reference
from shared.reference.catalogue import FEE_KIND_VI, Procedure
from shared.telemetry import in_trace

log = logging.getLogger("intake.payments")
CALLBACK_MAX_AGE_S = 300


def signature(secret: str, text: bytes) -> str:
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


class PaymentClient:
    def __init__(self, http: httpx.AsyncClient, url: str, merchant: str, secret: str, callback_url: str) -> None:
        self.http, self.url, self.merchant, self.secret = http, url.rstrip("/"), merchant, secret
        self.callback_url = callback_url

    async def _call(self, method: str, path: str, body: bytes = b"", key: str | None = None) -> dict:
        headers = {
            "X-Merchant": self.merchant,
            "X-Signature": signature(self.secret, f"{method}\n{path}\n".encode() + body),
            "Content-Type": "application/json",
        }
        if key:
            headers["Idempotency-Key"] = key
        r = await self.http.request(method, f"{self.url}{path}", content=body, headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()

    async def create(self, dossier_id: uuid.UUID, code: str, amount: int, description: str) -> dict:
        body = {
            "reference": code,
            "amount_vnd": amount,
            "description": description[:300],
            "callback_url": self.callback_url,
        }
        return await self._call("POST", "/v1/orders", json.dumps(body, ensure_ascii=False).encode(), str(dossier_id))

    async def status(self, order_id: str) -> dict:
        return await self._call("GET", f"/v1/orders/{order_id}")

    async def refund(self, order_id: str) -> dict:
        return await self._call("POST", f"/v1/orders/{order_id}/refund")

    async def cancel(self, order_id: str) -> dict:
        """The order cancelled; or, when the citizen paid it first (409), the order as it is."""
        try:
            return await self._call("POST", f"/v1/orders/{order_id}/cancel")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 409:
                return await self.status(order_id)
            raise

    def callback_is_genuine(self, timestamp: str, body: bytes, given: str, wall: float | None = None) -> bool:
        """The platform signed it (HMAC over the timestamp and the body), recently."""
        now = time.time() if wall is None else wall
        if not timestamp.isdigit() or abs(now - int(timestamp)) > CALLBACK_MAX_AGE_S:
            return False
        return hmac.compare_digest(signature(self.secret, timestamp.encode() + b"\n" + body), given)


def money(amount_vnd: int) -> str:
    return f"{amount_vnd:,} đồng".replace(",", ".")


# What each step of a payment puts on the dossier's timeline: the operations staff answering
# "where is my dossier?" see that it waits for its fee, when it was paid, cancelled or refunded.
TIMELINE = {
    "requested": "Chờ công dân nộp phí, lệ phí {amount} trực tuyến",
    "paid": "Công dân đã thanh toán trực tuyến {amount}, biên lai điện tử số {receipt}",
    "cancelled": "Đã hủy yêu cầu thanh toán (hồ sơ rút trước khi nộp phí)",
    "refunded": "Đã hoàn trả {amount} cho công dân",
}


async def on_timeline(
    conn: asyncpg.Connection, dossier_id: uuid.UUID, step: str, at: datetime, amount_vnd: int, receipt: str = ""
) -> None:
    """One step of the payment on the dossier's timeline, once (a step happens once per dossier)."""
    await conn.execute(
        "INSERT INTO dossier_history (event_id, dossier_id, event_type, at, agency_code, summary) "
        "VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING",
        f"payment.{step}:{dossier_id}",
        dossier_id,
        f"payment.{step}",
        at,
        TIMELINE[step].format(amount=money(amount_vnd), receipt=receipt or "(chưa có)"),
    )


def order_description(procedure: Procedure) -> str:
    """What the order says the citizen pays for: the procedure, then each line of its fee
    schedule (lệ phí and phí apart, as the receipt must show them)."""
    lines = "; ".join(f"{FEE_KIND_VI[f.kind]}: {f.name} {money(f.amount_vnd)}" for f in procedure.fees or ())
    return f"{procedure.name} ({lines})" if lines else procedure.name


async def settle(conn: asyncpg.Connection, order: dict, outbox: Outbox, ref: Reference, now: datetime) -> bool:
    """Apply what the platform says of an order; True when this call moved it (only the first
    of a callback, its duplicates and a poll does)."""
    if order.get("status") not in ("paid", "refunded"):
        return False
    row = await conn.fetchrow(
        "UPDATE payments SET status = 'paid', receipt_no = $2, paid_at = $3 "
        "WHERE order_id = $1 AND status = 'pending' RETURNING dossier_id, received_event, amount_vnd, traceparent",
        order["order_id"],
        order.get("receipt_no"),
        now,
    )
    if row is None:
        return False
    held = DossierReceived.model_validate_json(row["received_event"])
    procedure = ref.catalogue.procedures[held.procedure_code]
    due_at = ref.calendar.due_at(now, procedure.time_limit_days)  # the time limit runs from the payment
    await conn.execute(
        "UPDATE dossiers SET status = 'received', due_at = $2, legal_due_at = $2, paid_online_at = $3, updated_at = $3 "
        "WHERE id = $1 AND status = 'awaiting_payment'",
        row["dossier_id"],
        due_at,
        now,
    )
    await on_timeline(conn, row["dossier_id"], "paid", now, row["amount_vnd"], order.get("receipt_no") or "")
    # in the receipt's trace, linked to the callback or the poll that learned it: one journey
    with in_trace("lgsp.intake", row["traceparent"], "intake payment settled", link_here=True):
        await outbox.add(conn, held.model_copy(update={"at": now, "due_at": due_at}))
    return True


async def work(
    pool: asyncpg.Pool, client: PaymentClient, outbox: Outbox, ref: Reference, now: datetime, poll: timedelta
) -> None:
    """One round: create the orders not created yet, poll those whose callback is late, cancel
    the orders of dossiers withdrawn before payment, refund what must be refunded. A party that
    does not answer is tried again next round."""
    for p in await pool.fetch(
        "SELECT p.dossier_id, p.amount_vnd, d.code, d.procedure_code, d.procedure_name FROM payments p "
        "JOIN dossiers d ON d.id = p.dossier_id WHERE p.status = 'creating' ORDER BY p.created_at LIMIT 50"
    ):
        procedure = ref.catalogue.procedures.get(p["procedure_code"])
        description = order_description(procedure) if procedure else p["procedure_name"]
        try:
            order = await client.create(p["dossier_id"], p["code"], p["amount_vnd"], description)
        except httpx.HTTPError as exc:
            log.warning("payment order not created for %s: %s", p["code"], type(exc).__name__)
            break
        try:
            await pool.execute(
                # withdrawn while the order was being made: the order is kept to be cancelled on
                # the platform (its pay_url is not: nobody is sent to pay it)
                "UPDATE payments SET order_id = $2, polled_at = $4, "
                "  status = CASE status WHEN 'creating' THEN 'pending' ELSE 'cancel_requested' END, "
                "  pay_url = CASE status WHEN 'creating' THEN $3 END "
                "WHERE dossier_id = $1 AND order_id IS NULL AND status IN ('creating', 'cancel_requested', 'cancelled')",
                p["dossier_id"],
                order["order_id"],
                order["pay_url"],
                now,
            )
        except asyncpg.UniqueViolationError:
            # the platform answered with an order id another dossier holds: never settle one
            # dossier with another's payment; this one is asked again next round, the rest go on
            log.error("payment platform gave %s an order id already held by another dossier", p["code"])
    for p in await pool.fetch(
        "SELECT order_id FROM payments WHERE status = 'pending' AND polled_at <= $1 ORDER BY polled_at LIMIT 50",
        now - poll,
    ):
        try:
            order = await client.status(p["order_id"])
        except httpx.HTTPError as exc:
            log.warning("payment order %s not polled: %s", p["order_id"], type(exc).__name__)
            break
        async with pool.acquire() as conn, conn.transaction():
            if not await settle(conn, order, outbox, ref, now):
                await conn.execute("UPDATE payments SET polled_at = $2 WHERE order_id = $1", p["order_id"], now)
    await _cancel(pool, client, now)
    for p in await pool.fetch(
        "SELECT dossier_id, order_id FROM payments WHERE status = 'refund_requested' ORDER BY created_at LIMIT 50"
    ):
        try:
            order = await client.refund(p["order_id"])
        except httpx.HTTPError as exc:
            log.warning("payment order %s not refunded: %s", p["order_id"], type(exc).__name__)
            break
        if order.get("status") == "refunded":
            await _move(pool, p["dossier_id"], "refund_requested", "refunded", now)


# The moment each move records, and the timeline step it is (see TIMELINE)
_MOVES = {
    "refunded": ("refunded_at", "refunded"),
    "cancelled": ("cancelled_at", "cancelled"),
    "refund_requested": ("paid_at", "paid"),
}


async def _move(
    pool: asyncpg.Pool, dossier_id: uuid.UUID, was: str, to: str, now: datetime, receipt: str | None = None
) -> None:
    """The payment moved from ``was`` to ``to`` if it is still ``was`` (a worker of another
    instance may have moved it), with the step on the dossier's timeline, in one transaction."""
    column, step = _MOVES[to]
    async with pool.acquire() as conn, conn.transaction():
        moved = await conn.fetchrow(
            f"UPDATE payments SET status = $3, {column} = $4, receipt_no = coalesce($5, receipt_no) "
            "WHERE dossier_id = $1 AND status = $2 RETURNING amount_vnd, receipt_no",
            dossier_id,
            was,
            to,
            now,
            receipt,
        )
        if moved:
            await on_timeline(conn, dossier_id, step, now, moved["amount_vnd"], moved["receipt_no"] or "")


async def _cancel(pool: asyncpg.Pool, client: PaymentClient, now: datetime) -> None:
    """The orders of dossiers withdrawn before payment, cancelled on the platform; one the
    citizen paid first goes to be refunded. With no order yet there is nothing to tell the
    platform; an order a round was making while the dossier was withdrawn is kept when the
    platform answers, without its pay_url, and cancelled here too."""
    for p in await pool.fetch(
        "SELECT dossier_id, order_id FROM payments WHERE status = 'cancel_requested' ORDER BY created_at LIMIT 50"
    ):
        order: dict = {"status": "cancelled"}
        if p["order_id"] is not None:
            try:
                order = await client.cancel(p["order_id"])
            except httpx.HTTPError as exc:
                log.warning("payment order %s not cancelled: %s", p["order_id"], type(exc).__name__)
                break
        if order.get("status") == "cancelled":
            await _move(pool, p["dossier_id"], "cancel_requested", "cancelled", now)
        elif order.get("status") == "paid":  # paid before the cancellation came: refunded instead
            await _move(pool, p["dossier_id"], "cancel_requested", "refund_requested", now, order.get("receipt_no"))


async def cancel_unpaid(conn: asyncpg.Connection, dossier_id: uuid.UUID) -> bool:
    """The dossier's payment, not made yet, is to be cancelled (the worker tells the platform);
    False when there is none to cancel (no fee, or paid already). Takes the payment's row lock
    before the dossier's, in the order ``settle`` takes them."""
    return (
        await conn.fetchval(
            "UPDATE payments SET status = 'cancel_requested' WHERE dossier_id = $1 AND status IN ('creating', 'pending') "
            "RETURNING dossier_id",
            dossier_id,
        )
        is not None
    )


async def refund_if_paid(conn: asyncpg.Connection, dossier_id: uuid.UUID) -> None:
    """A dossier refused or withdrawn after its fee was paid: the fee goes back (the worker asks)."""
    await conn.execute(
        "UPDATE payments SET status = 'refund_requested' WHERE dossier_id = $1 AND status = 'paid'", dossier_id
    )
