"""Status sync to the national portal simulator: its vocabulary, its order, its outages."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import asyncpg
import httpx
import pytest

from services.intake.portal import PortalClient, PortalRejected, to_portal
from tests.helpers import eventually, platform_http, submission


async def portal_updates(http, platform, code):
    return (await http.get(f"{platform['portal'].url}/control/updates")).json().get(code, [])


async def test_updates_arrive_in_order_through_an_outage(platform):
    async with platform_http(timeout=15) as http:
        agencies = platform.agencies(http)
        await http.post(f"{platform['portal'].url}/control", json={"down": True})
        try:
            d = (await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193"))).json()
            await eventually(lambda: agencies.dossier(d["code"]), what="routing")
            await agencies.step_through(d["code"])
            await agencies.act(d["code"], "return", "000.21.12.H40", method="online")

            async def failing():
                view = (await http.get(f"{platform['intake'].url}/v1/portal-sync")).json()
                return view if any(f["code"] == d["code"] and f["attempts"] > 0 for f in view["failing"]) else None

            view = await eventually(failing, what="the sync to notice the outage")
            assert view["pending"] >= 1
            assert await portal_updates(http, platform, d["code"]) == []
        finally:
            await http.post(f"{platform['portal'].url}/control", json={"down": False})

        async def complete():
            ups = await portal_updates(http, platform, d["code"])
            return ups if ups and ups[-1]["TrangThaiHoSo"] == 10 else None

        updates = await eventually(complete, timeout=60, what="every update after the portal came back")
    assert [u["SoThuTu"] for u in updates] == list(range(1, len(updates) + 1))
    assert [u["TrangThaiHoSo"] for u in updates] == [2, 4, 9, 10]
    assert updates[0]["HinhThuc"] == 2 and updates[0]["TenTTHC"] == "Đăng ký khai sinh"
    assert len(updates[-1]["NgayTra"]) == 14


async def test_every_channel_is_synced_with_its_channel_code(platform):
    """The national portal's indicators are computed from what provinces sync: a dossier
    received at the counter or brought by the post is sent like an online one."""
    async with platform_http(timeout=15) as http:
        counter = (
            await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", channel="counter"))
        ).json()
        posted = (
            await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", channel="postal"))
        ).json()
        for d, code in ((counter, 1), (posted, 3)):
            [first, *_] = await eventually(lambda d=d: portal_updates(http, platform, d["code"]), what="its update")
            assert (first["TrangThaiHoSo"], first["HinhThuc"]) == (2, code)


def test_mapping_speaks_the_portal_vocabulary():
    row = {
        "code": "000.21.12.H40-261123-0001",
        "procedure_code": "1.001193",
        "procedure_name": "Đăng ký khai sinh",
        "applicant": json.dumps({"full_name": "Ngô Thị Hoa", "phone": "0912345678"}),
        "status": "supplement_requested",
        "channel": "postal",
        "received_at": datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc),
        "due_at": datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc),
        "current_agency": None,
        "agency_code": "000.21.12.H40",
    }
    body = to_portal(row, 3, "Hộ tịch", None)
    assert body["TrangThaiHoSo"] == 5 and body["HinhThuc"] == 3 and body["SoThuTu"] == 3
    assert body["NgayTiepNhan"] == "20261123083000" and body["NgayHenTra"] == "20261124170000"
    assert body["DonViXuLy"] == "000.21.12.H40" and "NgayTra" not in body


async def test_a_malformed_update_is_rejected_not_retried(platform):
    async with httpx.AsyncClient(timeout=10) as http:  # our session at the portal, not a platform token
        client = PortalClient(http, platform["portal"].url, "lgsp-ninh-binh", "local-portal-secret")
        with pytest.raises(PortalRejected, match="missing fields"):
            await client.push({"SoThuTu": 1, "MaHoSo": "x"})


async def test_one_sender_per_dossier_whichever_instance(platform, test_env):
    """While another intake instance holds a dossier (its advisory lock on the dossier), this
    one leaves the dossier's updates alone, instead of skipping a locked first update and
    sending the second before it; once the other lets go, they go, in order."""
    async with platform_http(timeout=15) as http:
        await http.post(f"{platform['portal'].url}/control", json={"down": True})
        other_instance = await asyncpg.connect(test_env["DATABASE_URL"])
        try:
            d = (await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193"))).json()

            async def failing():
                view = (await http.get(f"{platform['intake'].url}/v1/portal-sync")).json()
                return any(f["code"] == d["code"] and f["attempts"] > 0 for f in view["failing"])

            await eventually(failing, what="the sync to try once while the portal is down")
            holding = other_instance.transaction()
            await holding.start()
            await other_instance.execute("SELECT pg_advisory_xact_lock(hashtext('portal:' || $1::uuid::text))", d["id"])
            await http.post(f"{platform['portal'].url}/control", json={"down": False})
            await asyncio.sleep(3)  # several passes of the worker (0.2 s apart, backing off from 0.5 s)
            assert await portal_updates(http, platform, d["code"]) == []
            await holding.rollback()
        finally:
            await http.post(f"{platform['portal'].url}/control", json={"down": False})
            await other_instance.close()
        updates = await eventually(lambda: portal_updates(http, platform, d["code"]), what="the update once let go")
    assert [u["SoThuTu"] for u in updates][:1] == [1]


async def test_the_simulator_s_control_route_shows_no_phone_number_in_clear(platform):
    from tests.helpers import APPLICANT

    async with platform_http(timeout=15) as http:
        d = (await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193"))).json()

        async def received():
            return await portal_updates(http, platform, d["code"])

        updates = await eventually(received, what="the portal to receive the dossier")
        text = (await http.get(f"{platform['portal'].url}/control/updates")).text
    phone = APPLICANT["phone"]
    assert phone not in text
    assert updates[0]["SoDienThoai"] == phone[:2] + "*" * (len(phone) - 4) + phone[-2:]
