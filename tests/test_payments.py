"""Online payment of fees through the payment platform's simulator: an online dossier with a fee
waits (the national portal shows status 6) and is processed only once paid; the platform's
callback and intake's polling both settle it, exactly once, through duplicated and lost
callbacks; a dossier withdrawn after payment is refunded; the receipt is kept."""

from __future__ import annotations

import httpx

from tests.helpers import Agencies, eventually, platform_http, submission

CENTRE = "000.00.01.H40"
BUSINESS = "1.001612"  # business registration: a fee of 50,000 VND and a charge of 100,000 in the sample catalogue


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
            assert dossier["fee_vnd"] == 150_000
            assert await agencies.dossier(code) is None  # nobody processes it unpaid

            async def portal_told():
                held = (await http.get(f"{platform['portal'].url}/control/updates")).json().get(code, [])
                return held if any(u["TrangThaiHoSo"] == 6 for u in held) else None

            await eventually(portal_told, what="the portal told of the financial obligation")
            order_id = await _pay(http, payment, dossier)
            settled = await _settled(http, intake, code)
            assert settled["receipt_no"] == f"BL-{order_id[3:]}"
            routed = await eventually(lambda: agencies.dossier(code), what="routing processes it once paid")
            # settled by a callback, its journey goes on in the receipt's trace: one trace per dossier
            assert routed["trace_id"] == dossier["trace_id"] is not None
        finally:
            await http.post(f"{payment}/control", json={"duplicate_callbacks": 0}, auth=None)

        # four callbacks, one receipt event, one charge
        async def received_on_timeline():
            # the timeline is written from the events, after routing may have them: wait for it
            history = (await http.get(f"{intake}/v1/dossiers/{code}")).json()["history"]
            return history if any(h["event"] == "received" for h in history) else None

        history = await eventually(received_on_timeline, what="the receipt on the dossier's timeline")
        assert [h["event"] for h in history].count("received") == 1
        # the payment's steps on the timeline, for whoever answers "where is my dossier?"
        steps = {h["event"]: h["summary"] for h in history if h["event"].startswith("payment.")}
        assert steps["payment.requested"] == "Chờ công dân nộp phí, lệ phí 150.000 đồng trực tuyến"
        assert steps["payment.paid"] == (
            f"Công dân đã thanh toán trực tuyến 150.000 đồng, biên lai điện tử số BL-{order_id[3:]}"
        )
        order = await _charges(http, payment, order_id)
        assert (order["charges"], order["amount_vnd"]) == (1, 150_000)
        # the order names each line of the schedule, the fee and the charge apart, as the receipt must
        assert "Lệ phí: Lệ phí đăng ký doanh nghiệp 50.000 đồng" in order["description"]
        assert "Phí: Phí công bố nội dung đăng ký doanh nghiệp 100.000 đồng" in order["description"]

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
        routed = await eventually(lambda: agencies.dossier(code), what="routing has it")
        assert routed["trace_id"] == dossier["trace_id"] is not None  # settled by a poll, still one trace
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

        refunded_dossier = await eventually(refunded, timeout=60, what="the fee refunded")
        assert "payment.refunded" in [h["event"] for h in refunded_dossier["history"]]
        order = await _charges(http, payment, order_id)
        assert (order["status"], order["charges"]) == ("refunded", 1)


async def test_a_dossier_withdrawn_before_its_fee_is_ended_by_intake_its_order_cancelled_or_refunded(platform):
    """Routing never had a dossier that waits for its fee, so intake takes its withdrawal: the
    order is cancelled on the payment platform; one the citizen paid while the platform was
    out of reach (its callback lost, intake not yet told) is refunded instead, never kept."""
    intake, routing, payment = platform["intake"].url, platform["routing"].url, platform["payment"].url
    reason = {"reasons": ["Công dân xin rút hồ sơ trước khi nộp lệ phí"]}
    async with platform_http() as http:
        agencies = Agencies(http, routing)
        unpaid = await _submit_and_await_order(http, intake)
        paid_meanwhile = await _submit_and_await_order(http, intake)
        await http.post(f"{payment}/control", json={"down": True, "drop_callbacks": True}, auth=None)
        try:
            paid_order = await _pay(http, payment, paid_meanwhile)  # the citizen pays; intake hears nothing
            for dossier in (unpaid, paid_meanwhile):
                r = await http.post(f"{intake}/v1/dossiers/{dossier['code']}/withdraw", json=reason)
                assert r.status_code == 200, r.text
                assert (r.json()["status"], r.json()["payment_status"]) == ("withdrawn", "cancel_requested")
                assert r.json()["pay_url"] is None  # nobody is sent to pay a withdrawn dossier
            again = await http.post(f"{intake}/v1/dossiers/{unpaid['code']}/withdraw", json=reason)
            assert again.status_code == 409 and again.json()["errors"][0]["reason"] == "not_awaiting_payment"
        finally:
            await http.post(f"{payment}/control", json={"down": False, "drop_callbacks": False}, auth=None)

        async def payment_is(code: str, status: str):
            d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
            return d if d["payment_status"] == status else None

        cancelled = await eventually(
            lambda: payment_is(unpaid["code"], "cancelled"), timeout=60, what="the order cancelled"
        )
        refunded = await eventually(
            lambda: payment_is(paid_meanwhile["code"], "refunded"), timeout=60, what="the fee paid meanwhile refunded"
        )
        assert refunded["receipt_no"] == f"BL-{paid_order[3:]}"  # the receipt of what was paid is kept
        payment_steps = [h["event"] for h in cancelled["history"] if h["event"].startswith("payment.")]
        assert payment_steps == ["payment.requested", "payment.cancelled"]
        payment_steps = [h["event"] for h in refunded["history"] if h["event"].startswith("payment.")]
        assert payment_steps == ["payment.requested", "payment.paid", "payment.refunded"]
        orders = {o["order_id"]: o for o in (await http.get(f"{payment}/control/orders", auth=None)).json()["orders"]}
        unpaid_order = orders[unpaid["pay_url"].rsplit("/", 1)[1]]
        assert (unpaid_order["status"], unpaid_order["charges"]) == ("cancelled", 0)
        assert (orders[paid_order]["status"], orders[paid_order]["charges"]) == ("refunded", 1)
        late_payment = await http.post(f"{payment}/control/pay/{unpaid_order['order_id']}", auth=None)
        assert late_payment.status_code == 409  # a cancelled order cannot be paid any more

        for dossier in (unpaid, paid_meanwhile):
            code = dossier["code"]
            assert await agencies.dossier(code) is None  # routing never had it

            async def withdrawn_everywhere(code=code):
                d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
                updates = (await http.get(f"{platform['portal'].url}/control/updates")).json().get(code, [])
                on_timeline = any(
                    h["event"] == "withdrawn" and "trước khi nộp lệ phí" in h["summary"] for h in d["history"]
                )
                return updates if on_timeline and [u["TrangThaiHoSo"] for u in updates][-1:] == [7] else None

            await eventually(withdrawn_everywhere, what="the withdrawal on the timeline and the portal")


async def test_an_order_made_while_its_dossier_is_withdrawn_is_cancelled_on_the_platform_too(platform):
    """The worker is waiting on a slow platform to make the order when the citizen withdraws:
    the order it then gets back is cancelled on the platform, not left there to be paid."""
    intake, payment = platform["intake"].url, platform["payment"].url
    async with platform_http() as http:
        await http.post(f"{payment}/control", json={"create_delay_s": 3}, auth=None)
        try:
            r = await http.post(f"{intake}/v1/dossiers", json=submission(BUSINESS, agency_code=CENTRE))
            assert r.status_code == 201 and r.json()["payment_status"] == "creating", r.text
            code = r.json()["code"]

            async def being_made():
                answer = (await http.get(f"{payment}/control/orders", auth=None)).json()
                return answer["creating"] or None

            await eventually(being_made, timeout=30, interval=0.05, what="the worker waiting for the order")
            withdrawn = await http.post(
                f"{intake}/v1/dossiers/{code}/withdraw", json={"reasons": ["Công dân đổi ý, không nộp nữa"]}
            )
            assert withdrawn.status_code == 200, withdrawn.text
        finally:
            await http.post(f"{payment}/control", json={"create_delay_s": 0}, auth=None)

        async def cancelled_on_the_platform():
            orders = (await http.get(f"{payment}/control/orders", auth=None)).json()["orders"]
            mine = [o for o in orders if o["reference"] == code]
            return mine if mine and all(o["status"] == "cancelled" for o in mine) else None

        [order] = await eventually(cancelled_on_the_platform, timeout=30, what="the late order cancelled")
        assert order["charges"] == 0
        d = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
        assert (d["status"], d["payment_status"], d["pay_url"]) == ("withdrawn", "cancelled", None)
