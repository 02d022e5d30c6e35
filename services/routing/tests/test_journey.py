"""Dossiers move across agencies and levels through routing's HTTP API, with intake and
routing as separate processes on the real broker and database."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.notify.templates import SMS_MAX_UNITS
from shared.reference.catalogue import catalogue_for
from tests.helpers import COMMUNE, eventually, platform_http, submission, supplement_documents

pytestmark = pytest.mark.instants  # its outcome depends on the platform's clock: run at every awkward instant


@pytest.fixture
async def clients(platform):
    async with platform_http(timeout=15) as http:
        yield http, platform["intake"].url, platform.agencies(http)


async def received(http, intake_url, body) -> dict:
    r = await http.post(f"{intake_url}/v1/dossiers", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_commune_district_province_commune_journey(clients):
    http, intake, agencies = clients
    d = await received(http, intake, submission("2.000286"))
    code = d["code"]
    await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
    route = (await agencies.dossier(code))["steps"]
    assert [s["level"] for s in route] == ["commune", "district", "province", "province", "commune"]
    catalogue = catalogue_for("three_level")
    assert route[1]["name"] == catalogue.procedures["2.000286"].workflow[1].name  # Vietnamese intact

    # the commune cannot forward before accepting, and the district cannot act on the commune's step
    assert (await agencies.act(code, "forward", COMMUNE)).status_code == 409
    wrong = await agencies.act(code, "accept", "000.04.12.H40")
    assert wrong.status_code == 409 and "held by" in wrong.json()["title"]

    await agencies.step_through(code)
    d_after = await agencies.dossier(code)
    assert d_after["status"] == "resolved" and d_after["steps"][-1]["agency_code"] == COMMUNE
    assert (await agencies.act(code, "return", COMMUNE, method="counter")).status_code == 200
    finished = await agencies.act(code, "accept", COMMUNE)
    assert finished.status_code == 409 and "already returned" in finished.json()["title"]

    async def intake_sees_returned():
        r = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
        return r if r["status"] == "returned" else None

    view = await eventually(intake_sees_returned, what="intake to see the dossier returned")
    assert view["outcome"] == "approved"
    events = [h["event"] for h in view["history"]]
    assert events.count("transferred") == 4  # commune -> district -> province dept -> province -> commune
    assert any("Liên thông" in h["summary"] for h in view["history"])

    timeline = await eventually(
        lambda: _has(agencies.timeline(code), "vn.lgsp.dossier.returned.v1"), what="the timeline"
    )
    types = [t["event_type"] for t in timeline]
    assert types[0] == "vn.lgsp.dossier.received.v1" and timeline[0]["source"] == "/lgsp/intake"
    assert "vn.lgsp.dossier.resolved.v1" in types
    assert {t["trace_id"] for t in timeline} == {d["trace_id"]}  # the whole journey is one trace
    resolved = next(t for t in timeline if t["event_type"] == "vn.lgsp.dossier.resolved.v1")
    assert resolved["late"] is False


async def _has(fetch, event_type):
    rows = await fetch
    return rows if any(r["event_type"] == event_type for r in rows) else None


async def test_supplement_pauses_and_resumes(clients):
    http, intake, agencies = clients
    d = await received(http, intake, submission("1.000894"))
    code = d["code"]
    await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
    early = await http.post(f"{intake}/v1/dossiers/{code}/supplements", json={"documents": supplement_documents()})
    assert early.status_code == 409  # nothing was asked yet

    assert (await agencies.act(code, "accept", COMMUNE)).status_code == 200
    r = await agencies.act(code, "request-supplement", COMMUNE, reasons=["Thiếu bản sao giấy tờ tùy thân của bên nữ"])
    assert r.status_code == 200 and r.json()["status"] == "supplement_requested"
    assert (await agencies.act(code, "forward", COMMUNE)).status_code == 409  # paused

    async def intake_status(status):
        r = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
        return r if r["status"] == status else None

    await eventually(lambda: intake_status("supplement_requested"), what="intake to see the request")
    sup = await http.post(f"{intake}/v1/dossiers/{code}/supplements", json={"documents": supplement_documents()})
    assert sup.status_code == 200, sup.text

    async def resumed():
        x = await agencies.dossier(code)
        return x if x["status"] == "processing" and x["paused_at"] is None else None

    after = await eventually(resumed, what="routing to resume the dossier")
    # paused time is not counted against the agency
    assert datetime.fromisoformat(after["due_at"]) >= datetime.fromisoformat(d["due_at"])
    timeline = await eventually(lambda: _has(agencies.timeline(code), "vn.lgsp.dossier.resumed.v1"), what="resumed")
    kinds = [t["event_type"].split(".")[3] for t in timeline]
    assert kinds.index("supplement_requested") < kinds.index("supplemented") < kinds.index("resumed")
    assert any("Thiếu bản sao giấy tờ tùy thân của bên nữ" in t["summary"] for t in timeline)
    await eventually(lambda: intake_status("processing"), what="intake to see processing again")


async def test_refusal_withdrawal_and_stop(clients):
    http, intake, agencies = clients
    codes = []
    for _ in range(3):
        codes.append((await received(http, intake, submission("1.000656")))["code"])
    for code in codes:
        await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
    refused, withdrawn, stopped = codes

    await agencies.act(refused, "accept", COMMUNE)
    await agencies.act(refused, "forward", COMMUNE)
    await agencies.act(refused, "accept", COMMUNE)
    no_reason = await agencies.act(refused, "resolve", COMMUNE, outcome="refused")
    assert no_reason.status_code == 422
    r = await agencies.act(refused, "resolve", COMMUNE, outcome="refused", reasons=["Giấy báo tử không hợp lệ"])
    assert r.status_code == 200 and r.json()["outcome"] == "refused"

    assert (await agencies.act(withdrawn, "withdraw", as_agency=COMMUNE, reasons=["Công dân xin rút hồ sơ"])).json()[
        "status"
    ] == "withdrawn"
    assert (await agencies.act(withdrawn, "withdraw", as_agency=COMMUNE, reasons=["lần nữa"])).status_code == 409
    r = await agencies.act(stopped, "stop", COMMUNE, reasons=["Người yêu cầu không đủ điều kiện"])
    assert r.json()["status"] == "stopped"
    assert all(s["status"] == "skipped" for s in r.json()["steps"])
    assert (
        await agencies.act("000.21.12.H40-000000-0000", "withdraw", as_agency=COMMUNE, reasons=["x"])
    ).status_code == 404


async def test_reasons_are_bounded_and_the_citizen_gets_a_message_that_fits(clients, platform):
    http, intake, agencies = clients
    code = (await received(http, intake, submission("1.000656", notify_via=["sms"])))["code"]
    await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
    assert (await agencies.act(code, "accept", COMMUNE)).status_code == 200
    for action in ("request-supplement", "stop"):
        r = await agencies.act(code, action, COMMUNE, reasons=["Thiếu giấy tờ " * 10_000])
        assert r.status_code == 422 and "reasons.0" in str(r.json()["errors"]), r.text
    r = await agencies.act(
        code, "request-supplement", COMMUNE, reasons=["Bổ sung bản sao có chứng thực sổ hộ khẩu " * 12] * 20
    )
    assert r.status_code == 200, r.text

    async def sms():
        msgs = (await http.get(f"{platform['messaging'].url}/control/messages")).json()["delivered"]
        return [m for m in msgs if code in m["text"] and "cần bổ sung" in m["text"]]

    [msg] = await eventually(sms, what="the supplement request's SMS")
    assert len(msg["text"].encode("utf-16-le")) // 2 <= SMS_MAX_UNITS
    assert "…" in msg["text"] and msg["text"].endswith("tạm dừng đến khi nhận đủ.")
