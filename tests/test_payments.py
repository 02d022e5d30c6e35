"""Online payment of fees through the payment platform's simulator: an online dossier with a fee
waits (the national portal shows status 6) and is processed only once paid; the platform's
callback and intake's polling both settle it, exactly once, through duplicated and lost
callbacks; a dossier withdrawn after payment is refunded; the receipt is kept."""

from __future__ import annotations

import httpx

from tests.helpers import Agencies, eventually, platform_http, submission

CENTRE = "000.00.01.H40"
BUSINESS = "1.001612"  # business registration: 50,000 VND in the sample catalogue


async def _submit_and_await_order(http: httpx.AsyncClient, intake: str) -> dict:
    r = await http.post(f"{intake}/v1/dossiers", json=submission(BUSINESS, agency_code=CENTRE))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "awaiting_payment"

    async def ordered():
        d = (await http.get(f"{intake}/v1/dossiers/{r.json()['code']}")).json()
        return d if d["payment_status"] == "pending" and d["pay_url"] else None

    return await eventually(ordered, timeout=30, what="the payment order created")


async def _pay(http: httpx.AsyncClient, payment: str, dossier: dict) -> str:
    order_id = dossier["pay_url"].rsplit("/", 1)[1]
    paid = await http.post(f"{payment}/control/pay/{order_id}", auth=None)
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    return order_id


async def _settled(http: httpx.AsyncClient, intake: str, code: str) -> dict:
    async def received():
        d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
        return d if d["payment_status"] == "paid" and d["status"] != "awaiting_payment" else None

    return await eventually(received, timeout=60, what="the payment settled")


async def _charges(http: httpx.AsyncClient, payment: str, order_id: str) -> dict:
    orders = (await http.get(f"{payment}/control/orders", auth=None)).json()["orders"]
    return next(o for o in orders if o["order_id"] == order_id)


async def test_a_fee_is_paid_once_through_duplicated_callbacks_and_only_then_processed(platform):
    intake, routing, payment = platform["intake"].url, platform["routing"].url, platform["payment"].url
    async with platform_http() as http:
        agencies = Agencies(http, routing)
        await http.post(f"{payment}/control", json={"drop_callbacks": False, "duplicate_callbacks": 3}, auth=None)
        try:
            dossier = await _submit_and_await_order(http, intake)
            code = dossier["code"]
            assert dossier["fee_vnd"] == 50_000
            assert await agencies.dossier(code) is None  # nobody processes it unpaid

            async def portal_told():
                held = (await http.get(f"{platform['portal'].url}/control/updates")).json().get(code, [])
                return held if any(u["TrangThaiHoSo"] == 6 for u in held) else None

            await eventually(portal_told, what="the portal told of the financial obligation")
            order_id = await _pay(http, payment, dossier)
            settled = await _settled(http, intake, code)
            assert settled["receipt_no"] == f"BL-{order_id[3:]}"
            await eventually(lambda: agencies.dossier(code), what="routing processes it once paid")
        finally:
            await http.post(f"{payment}/control", json={"duplicate_callbacks": 0}, auth=None)

        # four callbacks, one receipt event, one charge
        async def received_on_timeline():
            # the timeline is written from the events, after routing may have them: wait for it
            history = (await http.get(f"{intake}/v1/dossiers/{code}")).json()["history"]
            return history if any(h["event"] == "received" for h in history) else None

        history = await eventually(received_on_timeline, what="the receipt on the dossier's timeline")
        assert [h["event"] for h in history].count("received") == 1
        assert (await _charges(http, payment, order_id))["charges"] == 1

        async def synced_paid():
            held = (await http.get(f"{platform['portal'].url}/control/updates")).json().get(code, [])
            return held if any(u.get("DuocThanhToanTrucTuyen") == 2 for u in held) else None

        await eventually(synced_paid, what="the portal told it was paid online")


async def test_lost_callbacks_are_covered_by_polling_and_a_withdrawal_is_refunded(platform):
    intake, routing, payment = platform["intake"].url, platform["routing"].url, platform["payment"].url
    async with platform_http() as http:
        agencies = Agencies(http, routing)
        await http.post(f"{payment}/control", json={"drop_callbacks": True}, auth=None)
        try:
            dossier = await _submit_and_await_order(http, intake)
            order_id = await _pay(http, payment, dossier)
            await _settled(http, intake, dossier["code"])  # polling alone found it
        finally:
            await http.post(f"{payment}/control", json={"drop_callbacks": False}, auth=None)
        code = dossier["code"]
        await eventually(lambda: agencies.dossier(code), what="routing has it")
        # a forged callback is refused
        forged = await http.post(
            f"{intake}/v1/payments/callback",
            json={"order_id": order_id, "status": "paid"},
            headers={"X-Timestamp": "1", "X-Signature": "00"},
            auth=None,
        )
        assert forged.status_code == 401
        withdrawn = await agencies.act(code, "withdraw", as_agency=CENTRE, reasons=["Công dân xin rút hồ sơ"])
        assert withdrawn.status_code == 200, withdrawn.text

        async def refunded():
            d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
            return d if d["payment_status"] == "refunded" else None

        await eventually(refunded, timeout=60, what="the fee refunded")
        order = await _charges(http, payment, order_id)
        assert (order["status"], order["charges"]) == ("refunded", 1)
