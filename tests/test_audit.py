"""The audit log against the running platform: who changed what, and every refused call, with
client, person, agency, request id, trace id, time and outcome; append-only; no personal data."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from shared.audit import query
from shared.topics import SERVICES
from tests.helpers import APPLICANT, COMMUNE, IDENTITIES, eventually, platform_http, submission

OTHER_COMMUNE = "000.22.12.H40"


async def test_state_changes_and_refusals_are_recorded_with_who_and_why(platform, test_env, clock):
    intake, routing = platform["intake"].url, platform["routing"].url
    started = clock.now()
    request_id = f"audit-{uuid.uuid4()}"
    async with platform_http(IDENTITIES.client("provincial-portal")) as portal:
        r = await portal.post(f"{intake}/v1/dossiers", json=submission(agency_code=COMMUNE))
        assert r.status_code == 201
        code = r.json()["code"]
    async with platform_http() as http:  # the driver reads like an operator; agencies act as their officials
        agencies = platform.agencies(http)
        await eventually(lambda: agencies.dossier(code), what="routing")
        # the commune's official accepts; another commune's official tries to; nobody signed in tries to
        assert (await agencies.act(code, "accept", COMMUNE)).status_code == 200
        cross = await http.post(
            f"{routing}/v1/dossiers/{code}/forward",
            auth=IDENTITIES.official(OTHER_COMMUNE),
            headers={"X-Request-Id": request_id},
            json={"agency_code": COMMUNE},
        )
        assert cross.status_code == 403 and cross.headers["X-Request-Id"] == request_id
        anonymous = await http.get(f"{intake}/v1/dossiers/{code}/slip", auth=None)
        assert anonymous.status_code == 401
        assert (
            await http.get(f"{intake}/v1/dossiers/{code}", auth=IDENTITIES.operator)
        ).status_code == 200  # not recorded

    schemas = [f"{test_env['LGSP_SCHEMA_PREFIX']}{s}" for s in SERVICES]
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        rows = await query(conn, schemas, dossier=code, since=started)
        seen = [(r["service"], r["method"], r["route"], r["status"], r["outcome"]) for r in rows]
        assert seen == [  # the submission names no code in its path: it is found by client below
            ("routing", "POST", "/v1/dossiers/{code}/accept", 200, "done"),
            ("routing", "POST", "/v1/dossiers/{code}/forward", 403, "denied"),
            ("intake", "GET", "/v1/dossiers/{code}/slip", 401, "denied"),
        ]
        accept, cross_row, anon = rows
        assert (accept["client_id"], accept["username"], accept["agency"]) == (
            "lgsp-local-tools",
            "official-000.21.12.h40",
            COMMUNE,
        )
        assert accept["trace_id"] and len(accept["trace_id"]) == 32
        assert cross_row["username"] == f"official-{OTHER_COMMUNE.lower()}" and cross_row["agency"] == OTHER_COMMUNE
        assert cross_row["request_id"] == request_id and OTHER_COMMUNE in cross_row["reason"]
        assert anon["client_id"] is None and "bearer token" in anon["reason"]
        by_portal = await query(conn, schemas, client="provincial-portal", since=started)
        assert [(r["route"], r["status"]) for r in by_portal] == [("/v1/dossiers", 201)]
        # personal data never reaches the log
        text = repr(await query(conn, schemas, since=started, limit=10_000))
        for personal in (APPLICANT["id_number"], APPLICANT["phone"], APPLICANT["full_name"]):
            assert personal not in text
        # append-only
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(f'UPDATE "{schemas[1]}".audit_log SET outcome = $1', "done")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(f'DELETE FROM "{schemas[1]}".audit_log')
    finally:
        await conn.close()


def test_anonymous_refusals_beyond_the_window_s_share_are_counted_in_one_row():
    from shared.audit import AnonymousRefusals

    now = [0.0]
    sampler = AnonymousRefusals(per_window=3, window_s=60, monotonic=lambda: now[0])
    assert [sampler.admit() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    now[0] = 59.9
    assert sampler.admit() == (False, 0)
    now[0] = 60.0  # a new window: the three not recorded are reported once
    assert sampler.admit() == (True, 3)
    assert sampler.admit() == (True, 0)
