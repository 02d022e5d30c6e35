"""Intake's HTTP API against the running intake process: what it accepts, how it refuses."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

GOOD = {
    "channel": "counter",
    "procedure_code": "1.001193",
    "agency_code": "000.00.12.H41",
    "applicant": {
        "full_name": "Trần Văn Đức",
        "id_number": "025090001234",
        "phone": "0987654321",
        "address": "Thôn Lục Bình, xã Lục Bình, huyện Bạch Thông, tỉnh Bắc Kạn",
    },
}


@pytest.fixture
async def http(platform):
    async with httpx.AsyncClient(base_url=platform["intake"].url, timeout=15) as client:
        yield client


def with_applicant(**changes) -> dict:
    return {**GOOD, "applicant": {**GOOD["applicant"], **changes}}


def reasons(resp: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in resp.json().get("errors", [])}


async def test_submit_and_read_back(http):
    r = await http.post("/v1/dossiers", json=GOOD)
    assert r.status_code == 201
    d = r.json()
    assert d["code"].startswith("000.00.12.H41-") and d["status"] == "received"
    assert (await http.get(f"/v1/dossiers/{d['code']}")).json()["id"] == d["id"]
    missing = await http.get("/v1/dossiers/000.00.12.H41-991231-9999")
    assert missing.status_code == 404 and "no dossier" in missing.json()["title"]


async def test_malformed_json_is_400(http):
    r = await http.post("/v1/dossiers", content=b'{"channel": "online",', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["title"] == "request body is not valid JSON"


@pytest.mark.parametrize("body, field", [
    ({k: v for k, v in GOOD.items() if k != "applicant"}, "applicant"),
    ({**GOOD, "channel": "fax"}, "channel"),
    ({**GOOD, "procedure_code": 12345}, "procedure_code"),
    ({**GOOD, "applicant": "Trần Văn Đức"}, "applicant"),
    (with_applicant(id_number="12345"), "applicant.id_number"),
    (with_applicant(phone="+1 555 0100"), "applicant.phone"),
    ({**GOOD, "agency_code": "not an agency"}, "agency_code"),
    ({**GOOD, "unexpected": True}, "unexpected"),
])
async def test_wrong_shapes_are_422_with_the_field_named(http, body, field):
    r = await http.post("/v1/dossiers", json=body)
    assert r.status_code == 422, r.text
    assert field in reasons(r), r.json()


async def test_every_reason_is_reported_at_once(http):
    r = await http.post("/v1/dossiers", json={**with_applicant(id_number="1", phone="2"), "channel": "fax"})
    assert r.status_code == 422
    assert {"channel", "applicant.id_number", "applicant.phone"} <= set(reasons(r))


async def test_oversize_body_is_413(http):
    r = await http.post("/v1/dossiers", json=with_applicant(address="Đ" * 2_000_000))
    assert r.status_code == 413
    assert "larger than" in r.json()["title"]


async def test_non_json_content_and_empty_body_are_4xx(http):
    for kwargs in ({"content": b""}, {"content": "chỉ là chữ".encode(), "headers": {"content-type": "text/plain"}},
                   {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}):
        r = await http.post("/v1/dossiers", **kwargs)
        assert 400 <= r.status_code < 500, (kwargs, r.status_code, r.text)


async def test_retry_with_same_idempotency_key_returns_the_same_dossier(http):
    key = f"portal-{uuid.uuid4()}"
    first = await http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": key})
    again = await asyncio.gather(*[http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": key}) for _ in range(5)])
    assert first.status_code == 201
    assert {r.status_code for r in again} == {200}
    assert {r.json()["id"] for r in again} == {first.json()["id"]}


async def test_concurrent_submissions_get_unique_codes(http):
    agency = "000.00.77.H41"
    rs = await asyncio.gather(*[http.post("/v1/dossiers", json={**GOOD, "agency_code": agency}) for _ in range(30)])
    assert all(r.status_code == 201 for r in rs)
    codes = [r.json()["code"] for r in rs]
    assert len(set(codes)) == 30
    assert sorted(int(c.rsplit("-", 1)[1]) for c in codes)[-1] >= 30
