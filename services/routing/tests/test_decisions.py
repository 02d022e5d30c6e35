"""Dossiers and documents meet: where a procedure's result is a decision, routing approves only
with a decision the deciding agency signed and sent through the documents service for that
dossier, checked on arrival; the decision's number then travels to the citizen's message and
the postal delivery, and every document sent for the dossier is on its timeline and in its
trace. Real services, broker, database and PKI."""

from __future__ import annotations

import pytest

from shared.traceview import load_trace
from tests.helpers import COMMUNE, RESULT, eventually, pay_fee_if_asked, platform_http, submission

DECISION_PROCEDURE = "1.003596"  # Chuyển mục đích sử dụng đất: the district's people's committee decides


@pytest.fixture
async def clients(platform):
    async with platform_http(timeout=15) as http:
        yield http, platform.agencies(http)


async def _at_decision(http, platform, agencies, **extra) -> dict:
    """A new dossier of a decision procedure, taken up to its accepted deciding step."""
    r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission(DECISION_PROCEDURE, **extra))
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    await pay_fee_if_asked(http, platform["intake"].url, platform["payment"].url, r.json())
    d = await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
    assert d["result_kind"] == "decision"
    while not ((step := d["steps"][d["current_step"]])["kind"] == "decide" and step["status"] == "in_progress"):
        await agencies.next_action(code)
        d = await agencies.dossier(code)
    return d


async def _document_state(agencies, code: str, document_id: str, state: str) -> dict | None:
    docs = {x["document_id"]: x for x in (await agencies.dossier(code))["documents"]}
    return docs[document_id] if document_id in docs and docs[document_id]["state"] == state else None


async def test_only_a_valid_decision_of_the_deciding_agency_approves(clients, platform):
    http, agencies = clients
    d = await _at_decision(http, platform, agencies)
    code, decider = d["code"], d["steps"][d["current_step"]]["agency_code"]
    assert decider != COMMUNE

    # a paper result is not enough where the result is a decision
    r = await agencies.act(code, "resolve", decider, outcome="approved", result_document=RESULT)
    assert r.status_code == 409 and "is a decision" in r.json()["title"], r.text

    # a valid document, but the commune's, not the deciding agency's
    commune_doc = await agencies.decisions.issue(d, COMMUNE, number=f"{code}/UBND-VP")
    await eventually(
        lambda: _document_state(agencies, code, commune_doc, "valid"), what="the commune's document checked"
    )
    r = await agencies.act(code, "resolve", decider, outcome="approved", decision_document_id=commune_doc)
    assert r.status_code == 409 and f"must come from {decider}" in r.json()["title"], r.text

    # the deciding agency's, but changed after signing: refused on arrival, with the reason
    tampered = await agencies.decisions.issue(d, decider, number=f"{code}/QĐ-sai", tamper=True)
    refused = await eventually(
        lambda: _document_state(agencies, code, tampered, "refused"), what="the tampered one refused"
    )
    r = await agencies.act(code, "resolve", decider, outcome="approved", decision_document_id=tampered)
    assert r.status_code == 409 and "refused on arrival" in r.json()["title"] and refused["reason"] in r.json()["title"]

    # the dossier is still being decided; the real decision approves it
    assert (await agencies.dossier(code))["status"] == "processing"
    decision = await agencies.decide(d, decider)
    r = await agencies.act(code, "resolve", decider, outcome="approved", decision_document_id=decision)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    states = {x["number"]: x["state"] for x in r.json()["documents"]}
    assert states == {f"{code}/UBND-VP": "valid", f"{code}/QĐ-sai": "refused", f"{code}/QĐ": "valid"}


async def test_the_decision_reaches_the_citizen_the_post_the_timeline_and_the_trace(clients, platform, run_dir):
    http, agencies = clients
    d = await _at_decision(http, platform, agencies, result_delivery="postal", notify_via=["sms"])
    code, decider = d["code"], d["steps"][d["current_step"]]["agency_code"]
    number = f"{code}/QĐ"
    await agencies.step_through(code)  # issues the decision, waits for its arrival, approves

    async def resolved_in_intake():
        view = (await http.get(f"{platform['intake'].url}/v1/dossiers/{code}")).json()
        return view if view["status"] in ("resolved", "returned") else None

    view = await eventually(resolved_in_intake, what="intake to see the approval")
    assert any(number in h["summary"] for h in view["history"]), view["history"]

    async def sms():
        msgs = (await http.get(f"{platform['messaging'].url}/control/messages")).json()["delivered"]
        return [m for m in msgs if code in m["text"] and "đã có kết quả" in m["text"]]

    [msg] = await eventually(sms, what="the citizen's message about the result")
    assert f"văn bản số {number}" in msg["text"]

    async def delivery():
        rows = (await http.get(f"{platform['postal'].url}/v1/dossiers/{d['dossier_id']}/shipments")).json()
        return [s for s in rows if s["kind"] == "delivery" and s["carrier_ref"]]

    [shipment] = await eventually(delivery, what="the delivery booked with the carrier")
    # the slip names the decision and the file kept for the citizen (its hash's first 16 digits)
    assert shipment["contents"].startswith(f"Kết quả hồ sơ {code}: văn bản số {number} (bản điện tử SHA-256 ")
    carried = (await http.get(f"{platform['carrier'].url}/v1/shipments/{shipment['carrier_ref']}")).json()
    assert carried["contents"] == shipment["contents"]  # Vietnamese intact on the carrier's side

    async def documents_on_timeline():
        rows = await agencies.timeline(code)
        sent = [t for t in rows if t["event_type"] == "vn.lgsp.document.sent.v1"]
        arrived = [
            t for t in rows if t["event_type"] == "vn.lgsp.document.status_changed.v1" and "Đã đến" in t["summary"]
        ]
        return (sent, arrived) if sent and arrived else None

    sent, arrived = await eventually(documents_on_timeline, what="the decision on the dossier's timeline")
    assert sent[0]["summary"] == f"{decider} gửi Quyết định số {number} đến {COMMUNE}"
    assert sent[0]["agency_code"] == decider and arrived[0]["agency_code"] == COMMUNE
    assert {t["trace_id"] for t in sent + arrived} == {d["trace_id"]}

    async def in_trace():
        spans = load_trace(run_dir / "traces", d["trace_id"])
        names = [s["name"] for s in spans if s["service"] == "routing"]
        return (
            names
            if "routing document for dossier" in names and "routing document status for dossier" in names
            else None
        )

    await eventually(in_trace, what="the decision's spans in the dossier's trace")
