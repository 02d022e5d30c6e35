"""A dossier crosses two real service processes: intake over HTTP, routing over Kafka,
in one trace, with Vietnamese text intact and no personal data in logs or spans."""

from __future__ import annotations

import json

import pytest

from shared.topic_reader import all_records
from shared.topics import DOSSIER
from shared.traceview import load_trace
from tests.helpers import APPLICANT, eventually, header, kafka_operator, platform_http, submission

pytestmark = pytest.mark.instants  # its outcome depends on the platform's clock: run at every awkward instant


async def test_dossier_crosses_intake_and_routing_in_one_trace(platform, test_env, run_dir):
    intake, routing = platform["intake"], platform["routing"]
    async with platform_http(timeout=10) as http:
        r = await http.post(f"{intake.url}/v1/dossiers", json=submission("1.001193"))
        assert r.status_code == 201, r.text
        dossier = r.json()
        trace_id = r.headers["X-Trace-Id"]
        assert dossier["trace_id"] == trace_id and len(trace_id) == 32

        async def recorded():
            resp = await http.get(f"{routing.url}/v1/dossiers/{dossier['code']}")
            return resp.json() if resp.status_code == 200 else None

        row = await eventually(recorded, what="routing to record the dossier")
    assert row["code"] == dossier["code"]
    assert row["trace_id"] == trace_id  # the trace intake started is the one routing sees

    # Vietnamese text crossed the wire as UTF-8, byte for byte.
    records = await all_records(kafka_operator(), f"{test_env['LGSP_TOPIC_PREFIX']}.{DOSSIER.name}")
    [received] = [
        r
        for r in records
        if header(r, "ce_subject") == dossier["id"] and header(r, "ce_type") == "vn.lgsp.dossier.received.v1"
    ]
    body = json.loads(received.value.decode("utf-8"))
    assert body["applicant"]["full_name"] == APPLICANT["full_name"]
    assert body["applicant"]["address"] == APPLICANT["address"]
    assert header(received, "traceparent").split("-")[1] == trace_id

    # The spans link: HTTP request -> outbox publish (intake) -> handling (routing).
    traces = run_dir / "traces"

    async def both_services_spans():
        spans = load_trace(traces, trace_id)
        handled = any(
            s["name"].endswith(".dossier process")
            and s["kind"] == "CONSUMER"
            and s["attributes"].get("cloudevents.event_type") == "vn.lgsp.dossier.received.v1"
            for s in spans
        )
        published = {s["span_id"] for s in spans if s["service"] == "intake" and s["kind"] == "PRODUCER"}
        consumed = any(s["service"] == "routing" and s["parent_id"] in published for s in spans)
        return spans if handled and consumed else None

    # fails (times out) unless routing's consume span is a child of intake's publish span
    spans = await eventually(both_services_spans, what="routing's consume span under intake's publish span")
    assert any(s["name"] == "POST /v1/dossiers" and s["parent_id"] is None for s in spans)


async def test_no_personal_data_in_logs_or_spans(platform, run_dir):
    async with platform_http(timeout=10) as http:
        r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", channel="counter"))
        assert r.status_code == 201

        async def recorded():
            return (await http.get(f"{platform['routing'].url}/v1/dossiers/{r.json()['code']}")).status_code == 200

        await eventually(recorded, what="routing to record the dossier")
    files = list((run_dir / "logs").glob("*.log")) + list((run_dir / "traces").glob("*.jsonl"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in (APPLICANT["id_number"], APPLICANT["phone"], APPLICANT["email"], APPLICANT["address"]):
            assert secret not in text, f"personal data found in {path.name}"
