"""Intake's HTTP API against the running intake process: what it accepts, how it refuses."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from shared.reference.calendar import LOCAL_TZ
from tests.helpers import COMMUNE, platform_http, submission

pytestmark = pytest.mark.instants  # its outcome depends on the platform's clock: run at every awkward instant

APPLICANT = {
    "full_name": "Trần Văn Đức",
    "id_number": "025090001234",
    "phone": "0987654321",
    "address": "Thôn Lục Bình, xã Lục Bình, huyện Bạch Thông, tỉnh Bắc Kạn",
}
GOOD = submission("1.001193", channel="counter", applicant=APPLICANT)


@pytest.fixture
async def http(platform):
    async with platform_http(base_url=platform["intake"].url, timeout=15) as client:
        yield client


def with_applicant(**changes) -> dict:
    return {**GOOD, "applicant": {**GOOD["applicant"], **changes}}


def fields(resp: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in resp.json().get("errors", [])}


def reason_codes(resp: httpx.Response) -> list[str]:
    return [r["code"] for r in resp.json()["reasons"]]


async def test_submit_read_back_and_slip(http):
    r = await http.post("/v1/dossiers", json=GOOD)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["code"].startswith(f"{COMMUNE}-") and d["status"] == "received"
    assert datetime.fromisoformat(d["due_at"]) > datetime.fromisoformat(d["received_at"])
    assert (await http.get(f"/v1/dossiers/{d['code']}")).json()["id"] == d["id"]
    slip = (await http.get(f"/v1/dossiers/{d['code']}/slip")).json()
    assert slip["title"] == "Giấy tiếp nhận hồ sơ và hẹn trả kết quả"
    assert slip["applicant_name"] == "Trần Văn Đức"
    assert slip["procedure"]["name"] == "Đăng ký khai sinh"
    assert slip["due_at"].endswith(
        datetime.fromisoformat(d["due_at"]).astimezone(timezone(timedelta(hours=7))).strftime("%d/%m/%Y")
    )
    missing = await http.get("/v1/dossiers/000.00.12.H41-991231-9999")
    assert missing.status_code == 404 and "no dossier" in missing.json()["title"]


async def test_malformed_json_is_400(http):
    r = await http.post("/v1/dossiers", content=b'{"channel": "online",', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["title"] == "request body is not valid JSON"


@pytest.mark.parametrize(
    "body, field",
    [
        ({k: v for k, v in GOOD.items() if k != "applicant"}, "applicant"),
        ({**GOOD, "channel": "fax"}, "channel"),
        ({**GOOD, "procedure_code": 12345}, "procedure_code"),
        ({**GOOD, "applicant": "Trần Văn Đức"}, "applicant"),
        ({**GOOD, "documents": [{"name": "x.pdf", "size": -1}]}, "documents.0.size"),
        ({**GOOD, "documents": [{**GOOD["documents"][0], "sha256": "not-a-digest"}]}, "documents.0.sha256"),
        ({**GOOD, "unexpected": True}, "unexpected"),
    ],
)
async def test_wrong_shapes_are_422_with_the_field_named(http, body, field):
    r = await http.post("/v1/dossiers", json=body)
    assert r.status_code == 422, r.text
    assert field in fields(r), r.json()


async def test_every_refusal_reason_is_reported_at_once_and_recorded(http):
    body = {
        **submission("1.001193", channel="counter", applicant={**APPLICANT, "id_number": "12345", "phone": "+1 555"}),
        "documents": [],
        "result_delivery": "postal",
        "procedure_code": "9.999999",
        "agency_code": "000.99.99.H40",
    }
    r = await http.post("/v1/dossiers", json=body)
    assert r.status_code == 422
    assert r.json()["title"] == "dossier refused at receipt"
    assert set(reason_codes(r)) == {"unknown_procedure", "unknown_agency", "malformed_id_number", "malformed_phone"}
    assert uuid.UUID(r.json()["refusal_id"])


@pytest.mark.parametrize(
    "body, codes",
    [
        (
            submission("1.001193", agency_code="000.00.12.H40"),
            {"agency_does_not_handle"},
        ),  # a district cannot register births
        (submission("2.000908", channel="online"), {"channel_not_allowed"}),  # certified copies: counter only
        (submission("1.000894", channel="counter", result_delivery="postal"), {"postal_result_not_allowed"}),
        ({**submission("1.004227"), "documents": submission("1.004227")["documents"][:1]}, {"missing_component"}),
        (
            submission("1.001193", channel="online", received_at="2026-01-05T09:00:00+07:00"),
            {"received_at_not_allowed"},
        ),
        (submission("1.001193", applicant={**APPLICANT, "email": "not-an-email"}), {"malformed_email"}),
        # withdrawn from the catalogue after 30/6/2025
        (submission("1.000001", channel="counter"), {"procedure_withdrawn"}),
    ],
)
async def test_each_rule_of_receipt(http, body, codes):
    r = await http.post("/v1/dossiers", json=body)
    assert r.status_code == 422, r.text
    assert set(reason_codes(r)) == codes


async def test_missing_components_are_each_named(http):
    r = await http.post("/v1/dossiers", json={**submission("1.004227"), "documents": []})
    messages = [x["message"] for x in r.json()["reasons"] if x["code"] == "missing_component"]
    assert len(messages) == 3 and any("Sơ đồ thửa đất" in m for m in messages)


async def test_oversize_body_is_413_declared_or_chunked(http):
    r = await http.post("/v1/dossiers", json=with_applicant(address="Đ" * 2_000_000))
    assert r.status_code == 413
    assert "larger than" in r.json()["title"]
    big = json.dumps(with_applicant(address="Đ" * 1_000_000)).encode()

    async def chunks():  # no Content-Length: Transfer-Encoding: chunked
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    r = await http.post("/v1/dossiers", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["title"]

    async def small():
        yield json.dumps(GOOD).encode()

    r = await http.post("/v1/dossiers", content=small(), headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text  # a chunked body within the limit is read as usual


@pytest.mark.parametrize(
    "document, field",
    [
        ({"name": "Đ" * 100_000}, "documents.0.name"),
        ({"media_type": "application/" + "x" * 100_000}, "documents.0.media_type"),
        ({"size": 10**30}, "documents.0.size"),
        ({"size": -1}, "documents.0.size"),
        ({"component": "c" * 1000}, "documents.0.component"),
    ],
)
async def test_unbounded_document_fields_are_422_with_the_field_named(http, document, field):
    body = {**GOOD, "documents": [{**GOOD["documents"][0], **document}]}
    r = await http.post("/v1/dossiers", json=body)
    assert r.status_code == 422 and field in fields(r), r.text


async def test_an_idempotency_key_reused_for_another_request_is_422(http):
    key = f"portal-{uuid.uuid4()}"
    first = await http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    other = await http.post(
        "/v1/dossiers", json=with_applicant(full_name="Lê Thị Ánh Tuyết"), headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and "Idempotency-Key" in fields(other)
    assert "different request" in other.json()["title"]
    # the same request again, with its keys in another order, is still a retry
    reordered = dict(reversed(list(GOOD.items())))
    again = await http.post("/v1/dossiers", json=reordered, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    pickup = {**GOOD, "channel": "postal"}
    p1 = await http.post("/v1/pickups", json=pickup, headers={"Idempotency-Key": key + "-p"})
    p2 = await http.post(
        "/v1/pickups", json={**pickup, "result_delivery": "postal"}, headers={"Idempotency-Key": key + "-p"}
    )
    assert p1.status_code == 202 and p2.status_code == 422 and "Idempotency-Key" in fields(p2)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"from": "2026-11-01T00:00:00+07:00", "to": "9999-12-31T23:59:59-12:00"}, "to"),
        ({"from": "0001-01-01T00:00:00+14:00", "to": "2026-11-01T00:00:00+07:00"}, "from"),
        ({"from": "2026-11-01T00:00:00", "to": "2026-12-01T00:00:00+07:00"}, "from"),
        ({"from": "2026-11-01T00:00:00+07:00", "to": "2026-10-01T00:00:00+07:00"}, "to"),
        ({"period": "0000"}, "query.period"),  # once a 500 (a fuzzer's find): year 0 has no December before it
        ({"period": "2000-01"}, "from"),  # starts on 15/12/1999, before the report's range
        ({"period": "2026-11", "from": "2026-11-01T00:00:00+07:00"}, "period"),
        ({}, "from"),
    ],
)
async def test_report_periods_out_of_range_are_422_naming_the_parameter(http, params, name):
    r = await http.get("/v1/reports", params=params)
    assert r.status_code == 422 and name in fields(r), r.text


async def test_a_regime_period_is_a_report_of_its_own_dates(http):
    r = await http.get("/v1/reports", params={"period": "2026-11"})
    assert r.status_code == 200, r.text
    assert (r.json()["from"], r.json()["to"]) == ("2026-10-15T00:00:00+07:00", "2026-11-15T00:00:00+07:00")


async def test_non_json_content_and_empty_body_are_4xx(http):
    for kwargs in (
        {"content": b""},
        {"content": "chỉ là chữ".encode(), "headers": {"content-type": "text/plain"}},
        {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}},
    ):
        r = await http.post("/v1/dossiers", **kwargs)
        assert 400 <= r.status_code < 500, (kwargs, r.status_code, r.text)


async def test_retry_with_same_idempotency_key_returns_the_same_dossier(http):
    key = f"portal-{uuid.uuid4()}"
    first = await http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": key})
    again = await asyncio.gather(
        *[http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": key}) for _ in range(5)]
    )
    assert first.status_code == 201
    assert {r.status_code for r in again} == {200}
    assert {r.json()["id"] for r in again} == {first.json()["id"]}


async def test_retried_refusal_returns_the_same_refusal(http):
    key = f"portal-{uuid.uuid4()}"
    body = {**GOOD, "procedure_code": "9.999999"}
    first = await http.post("/v1/dossiers", json=body, headers={"Idempotency-Key": key})
    again = await http.post("/v1/dossiers", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 422
    assert first.json()["refusal_id"] == again.json()["refusal_id"]


async def test_concurrent_submissions_get_unique_codes(http):
    agency = "000.23.11.H40"  # Xã Ninh Nhất
    rs = await asyncio.gather(*[http.post("/v1/dossiers", json={**GOOD, "agency_code": agency}) for _ in range(30)])
    assert all(r.status_code == 201 for r in rs), [r.text for r in rs if r.status_code != 201][:1]
    codes = [r.json()["code"] for r in rs]
    assert len(set(codes)) == 30
    # one sequence per agency and day, without gaps (the run may straddle midnight)
    by_day: dict[str, list[int]] = {}
    for c in codes:
        _, day, seq = c.rsplit("-", 2)
        by_day.setdefault(day, []).append(int(seq))
    for seqs in by_day.values():
        assert sorted(seqs)[-len(seqs) :] == list(range(max(seqs) - len(seqs) + 1, max(seqs) + 1))


async def test_text_that_cannot_be_stored_is_a_4xx(http):
    # found by fuzzing: a NUL inside a string reached PostgreSQL and came back as a 500
    r = await http.post("/v1/dossiers", json={**GOOD, "procedure_code": "1.001193\u0000"})
    assert r.status_code == 422 and "procedure_code" in fields(r)
    r = await http.post("/v1/dossiers", json=with_applicant(full_name="Trần\u0000Đức"))
    assert r.status_code == 422 and "applicant.full_name" in fields(r)
    r = await http.get("/v1/dossiers/abc%00def")
    assert r.status_code == 400 and "not valid text" in r.json()["title"]


async def test_an_empty_idempotency_key_is_refused(http):
    # found by fuzzing: an empty key skipped the retry lookup and then collided with an earlier empty key
    for _ in range(2):
        r = await http.post("/v1/dossiers", json=GOOD, headers={"Idempotency-Key": ""})
        assert r.status_code == 422 and "header.idempotency-key" in fields(r)


async def test_a_citizen_looks_up_a_dossier_with_the_key_on_the_slip_not_the_code_alone(http):
    r = await http.post("/v1/dossiers", json=GOOD)
    assert r.status_code == 201
    code, key = r.json()["code"], r.json()["lookup_key"]
    assert len(key) == 8 and key.isalnum()
    slip = (await http.get(f"/v1/dossiers/{code}/slip")).json()
    assert slip["lookup_key"] == key
    async with httpx.AsyncClient(base_url=str(http.base_url), timeout=10) as citizen:  # no token at all
        seen = await citizen.get(f"/v1/lookup/{code}", params={"key": key.lower()})
        assert seen.status_code == 200, seen.text
        assert (
            seen.json()["status"] in ("received", "processing") and seen.json()["code"] == code
        )  # routing may be quick
        assert APPLICANT["full_name"] not in seen.text and APPLICANT["phone"] not in seen.text
        wrong = await citizen.get(f"/v1/lookup/{code}", params={"key": "ABCDEFGH" if key != "ABCDEFGH" else "HGFEDCBA"})
        unknown = await citizen.get(f"/v1/lookup/{code[:-4]}9999", params={"key": key})
        assert wrong.status_code == unknown.status_code == 404 and wrong.json() == unknown.json()
        assert (await citizen.get(f"/v1/lookup/{code}")).status_code == 422  # the key is not optional
        assert (await citizen.get(f"/v1/dossiers/{code}")).status_code == 401  # the code alone opens nothing


async def test_an_agency_out_of_numbers_for_the_day_gets_409_and_others_go_on(http, platform, test_env, clock):
    """The code has four digits for the day's sequence: the 10,000th dossier of a day at one
    agency is a clear 409, never a crash, and the agency's counter is left as it was."""
    agency = "000.22.13.H40"
    day = clock.now().astimezone(LOCAL_TZ).date()
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    table = f'"{test_env["LGSP_SCHEMA_PREFIX"]}intake".daily_sequences'
    before = await conn.fetchval(f"SELECT last_value FROM {table} WHERE agency_code = $1 AND day = $2", agency, day)
    try:
        await conn.execute(
            f"INSERT INTO {table} VALUES ($1, $2, 9999) ON CONFLICT (agency_code, day) DO UPDATE SET last_value = 9999",
            agency,
            day,
        )
        r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193", agency_code=agency))
        assert r.status_code == 409, r.text
        assert "9999" in r.json()["title"] and r.json()["errors"] == [
            {"field": "agency_code", "reason": "no dossier number left today"}
        ]
        assert (
            await conn.fetchval(f"SELECT last_value FROM {table} WHERE agency_code = $1 AND day = $2", agency, day)
            == 9999
        )
        other = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission("1.001193"))
        assert other.status_code == 201, other.text
    finally:
        if before is None:
            await conn.execute(f"DELETE FROM {table} WHERE agency_code = $1 AND day = $2", agency, day)
        else:
            await conn.execute(
                f"UPDATE {table} SET last_value = $3 WHERE agency_code = $1 AND day = $2", agency, day, before
            )
        await conn.close()


async def test_only_the_receiving_agency_s_counter_may_backdate_a_receipt(platform, clock):
    """A portal used to be able to submit "at the counter, 29 days ago": an overdue notice, an
    apology in the commune's name and lower on-time figures, from a body field."""
    from tests.helpers import IDENTITIES

    backdated = (clock.now() - timedelta(days=10)).isoformat()
    body = submission("1.001193", channel="counter", received_at=backdated)
    async with httpx.AsyncClient(base_url=platform["intake"].url, timeout=15) as http:
        for portal in ("national-portal", "provincial-portal"):
            r = await http.post("/v1/dossiers", json=body, auth=IDENTITIES.client(portal))
            assert r.status_code == 422 and set(reason_codes(r)) == {"received_at_not_allowed"}, r.text
        # another agency's counter may not act for this commune at all
        r = await http.post("/v1/dossiers", json=body, auth=IDENTITIES.client("counter-province-centre"))
        assert r.status_code == 403, r.text
        # the commune's own counter, within the window
        r = await http.post("/v1/dossiers", json=body, auth=IDENTITIES.counter(COMMUNE))
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["received_at"]) == datetime.fromisoformat(backdated)
        future = submission("1.001193", channel="counter", received_at="2099-01-05T09:00:00+07:00")
        r = await http.post("/v1/dossiers", json=future, auth=IDENTITIES.counter(COMMUNE))
        assert r.status_code == 422 and set(reason_codes(r)) == {"received_at_invalid"}, r.text
