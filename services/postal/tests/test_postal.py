"""BCCI against the carrier simulator: pickups that become dossiers, results delivered by post,
a carrier that is down, duplicated and reordered webhooks, forged ones, failed deliveries."""

from __future__ import annotations

import json
import uuid

import pytest

from ops.simulators.carrier import sign
from shared.topic_reader import all_records
from tests.helpers import COMMUNE, IDENTITIES, eventually, header, kafka_operator, platform_http, submission

pytestmark = pytest.mark.instants  # its outcome depends on the platform's clock: run at every awkward instant


@pytest.fixture
async def ctx(platform):
    async with platform_http(timeout=15) as http:
        carrier = platform["carrier"].url
        await http.post(f"{carrier}/control", json={"delay_s": 0.2})
        yield http, platform, platform.agencies(http)
        await http.post(f"{carrier}/control", json={})


async def shipments(http, platform, dossier_id):
    return (await http.get(f"{platform['postal'].url}/v1/dossiers/{dossier_id}/shipments")).json()


async def shipment_events(test_env, dossier_id):
    records = await all_records(kafka_operator(), f"{test_env['LGSP_TOPIC_PREFIX']}.dossier")
    return [
        json.loads(r.value)
        for r in records
        if header(r, "ce_subject") == dossier_id and header(r, "ce_type") == "vn.lgsp.postal.shipment_progressed.v1"
    ]


async def test_pickup_becomes_a_received_dossier(ctx):
    http, platform, agencies = ctx
    r = await http.post(f"{platform['intake'].url}/v1/pickups", json=submission("1.001193", channel="postal"))
    assert r.status_code == 202, r.text
    pickup = r.json()["pickup_id"]

    async def received():
        p = (await http.get(f"{platform['intake'].url}/v1/pickups/{pickup}")).json()
        return p if p["status"] == "received" else None

    p = await eventually(received, what="the post to bring the dossier to the counter")
    d = (await http.get(f"{platform['intake'].url}/v1/dossiers/{p['dossier_code']}")).json()
    assert d["id"] == pickup and d["channel"] == "postal"
    await eventually(lambda: agencies.dossier(p["dossier_code"]), what="routing to start the workflow")


async def test_pickup_with_a_bad_request_is_refused_before_the_post_goes(ctx):
    http, platform, _ = ctx
    r = await http.post(
        f"{platform['intake'].url}/v1/pickups", json={**submission("1.001193", channel="postal"), "documents": []}
    )
    assert r.status_code == 422 and "missing_component" in [x["code"] for x in r.json()["reasons"]]
    online = await http.post(f"{platform['intake'].url}/v1/pickups", json=submission("1.001193", channel="online"))
    assert online.status_code == 422


async def test_result_by_post_returns_the_dossier(ctx, test_env):
    http, platform, agencies = ctx
    r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", result_delivery="postal"))
    d = r.json()
    await eventually(lambda: agencies.dossier(d["code"]), what="routing")
    await agencies.step_through(d["code"])

    async def returned():
        x = await agencies.dossier(d["code"])
        return x if x["status"] == "returned" else None

    await eventually(returned, what="the delivery to return the dossier")
    [s] = await shipments(http, platform, d["id"])
    assert s["kind"] == "delivery" and s["status"] == "delivered"

    async def returned_by_post_in_timeline():  # the timeline is written as routing reads its own event back
        timeline = await agencies.timeline(d["code"])
        return any(t["event_type"] == "vn.lgsp.dossier.returned.v1" and "(postal)" in t["summary"] for t in timeline)

    await eventually(returned_by_post_in_timeline, what="the return by post in the timeline")


async def test_carrier_down_then_back_books_once(ctx, test_env):
    http, platform, _ = ctx
    carrier = platform["carrier"].url
    await http.post(f"{carrier}/control", json={"down": True, "delay_s": 0.2})
    r = await http.post(f"{platform['intake'].url}/v1/pickups", json=submission("1.000656", channel="postal"))
    pickup = r.json()["pickup_id"]

    async def retried():
        s = await shipments(http, platform, pickup)
        return s if s and s[0]["attempts"] >= 2 and s[0]["status"] == "booking" else None

    [s] = await eventually(retried, what="postal to retry the booking")
    assert s["last_error"]
    await http.post(f"{carrier}/control", json={"delay_s": 0.2})
    await eventually(lambda: _status(http, platform, pickup, "delivered"), what="the pickup after the carrier is back")
    bookings = (await http.get(f"{carrier}/control/bookings")).json()["requests"]
    assert bookings[s["id"]] >= 3  # tried while down, then once more
    records = await all_records(kafka_operator(), f"{test_env['LGSP_TOPIC_PREFIX']}.dossier")
    booked = [
        r
        for r in records
        if header(r, "ce_subject") == pickup and header(r, "ce_type") == "vn.lgsp.postal.shipment_booked.v1"
    ]
    assert len(booked) == 1


async def _status(http, platform, dossier_id, status):
    s = await shipments(http, platform, dossier_id)
    return s if s and s[0]["status"] == status else None


async def test_duplicated_and_reordered_webhooks(ctx, test_env):
    http, platform, _ = ctx
    await http.post(f"{platform['carrier'].url}/control", json={"duplicate": True, "reorder": True, "delay_s": 0.2})
    r = await http.post(f"{platform['intake'].url}/v1/pickups", json=submission("1.000656", channel="postal"))
    pickup = r.json()["pickup_id"]
    await eventually(lambda: _status(http, platform, pickup, "delivered"), what="the shipment to be delivered")
    statuses = [e["status"] for e in await eventually(lambda: shipment_events(test_env, pickup), what="events")]
    # in_transit arrived before picked_up: the late picked_up is stale; every copy after the first is a duplicate
    assert statuses == ["in_transit", "delivered"]


async def test_forged_replayed_and_malformed_webhooks_are_refused(ctx, clock):
    _, platform, _ = ctx
    url = f"{platform['postal'].url}/v1/carrier/webhooks"
    body = json.dumps({"event_id": "e1", "reference": str(uuid.uuid4()), "status": "delivered"}).encode()
    now = str(int(clock.now().timestamp()))
    async with platform_http(IDENTITIES.carrier) as http:  # the carrier's own token: the HMAC is still checked
        await _webhooks_refused(http, url, body, now, clock)
    async with platform_http(IDENTITIES.driver) as http:  # a signed webhook from a caller that is not the carrier
        signed = await http.post(
            url, content=body, headers={"X-Carrier-Timestamp": now, "X-Carrier-Signature": sign(now, body)}
        )
        assert signed.status_code == 403 and "carrier" in signed.json()["title"]


async def _webhooks_refused(http, url: str, body: bytes, now: str, clock) -> None:
    forged = await http.post(url, content=body, headers={"X-Carrier-Timestamp": now, "X-Carrier-Signature": "00" * 32})
    assert forged.status_code == 401 and "bad signature" in forged.json()["title"]
    old = str(int(clock.now().timestamp()) - 3600)
    replay = await http.post(
        url, content=body, headers={"X-Carrier-Timestamp": old, "X-Carrier-Signature": sign(old, body)}
    )
    assert replay.status_code == 401 and "replay" in replay.json()["title"]
    bare = await http.post(url, content=body)
    assert bare.status_code == 401
    wrong_secret = await http.post(
        url, content=body, headers={"X-Carrier-Timestamp": now, "X-Carrier-Signature": sign(now, body, b"guess")}
    )
    assert wrong_secret.status_code == 401
    garbage = b"{not json"
    bad = await http.post(
        url, content=garbage, headers={"X-Carrier-Timestamp": now, "X-Carrier-Signature": sign(now, garbage)}
    )
    assert bad.status_code == 400
    unknown = await http.post(
        url, content=body, headers={"X-Carrier-Timestamp": now, "X-Carrier-Signature": sign(now, body)}
    )
    assert unknown.status_code == 404


async def test_failed_delivery_leaves_the_result_at_the_counter(ctx):
    http, platform, agencies = ctx
    r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", result_delivery="postal"))
    d = r.json()
    await eventually(lambda: agencies.dossier(d["code"]), what="routing")
    await http.post(f"{platform['carrier'].url}/control", json={"fail_next": "Không có người nhận", "delay_s": 0.2})
    await agencies.step_through(d["code"])
    await eventually(lambda: _status(http, platform, d["id"], "returned_to_sender"), what="the failed delivery")
    x = await agencies.dossier(d["code"])
    assert x["status"] == "resolved" and x["steps"][-1]["agency_code"] == COMMUNE
    r = await agencies.act(d["code"], "return", COMMUNE, method="counter")
    assert r.json()["status"] == "returned"
