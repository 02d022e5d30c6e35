"""Request quotas: one connector over its quota gets 429 with Retry-After; the others go on."""

from __future__ import annotations

import pytest

from ops.processes import service
from shared.access import Caller, Quota, Quotas
from tests.helpers import IDENTITIES, platform_http


def _caller(client_id: str, username: str | None = None) -> Caller:
    return Caller(client_id, "sub", username or f"service-account-{client_id}", frozenset({"portal"}), None)


def test_a_bucket_refills_at_its_rate_and_callers_do_not_share_one():
    now = [1000.0]
    quotas = Quotas(Quota(2, 3), {"bench": None}, monotonic=lambda: now[0])
    portal, other = _caller("national-portal"), _caller("provincial-portal")
    assert [quotas.take(portal) for _ in range(3)] == [None, None, None]
    assert quotas.take(portal) == pytest.approx(0.5)  # one request every half second at 2/s
    assert quotas.take(other) is None  # the other connector is not starved
    now[0] += 0.5
    assert quotas.take(portal) is None and quotas.take(portal) == pytest.approx(0.5)
    now[0] += 60
    assert [quotas.take(portal) for _ in range(4)][:3] == [None, None, None]  # refilled to the burst, no more
    assert all(quotas.take(_caller("bench")) is None for _ in range(100))  # unlimited
    # officials all sign in through the console's client, but each has a bucket of their own
    officials = [_caller("lgsp-console", f"official-{i}") for i in range(2)]
    assert [quotas.take(officials[0]) for _ in range(4)][3] is not None and quotas.take(officials[1]) is None


def test_quotas_parse_and_refuse_nonsense():
    assert Quota.parse("50/200") == Quota(50, 200) and Quota.parse("5") == Quota(5, 5)
    for bad in ("0/10", "5/0"):
        with pytest.raises(ValueError):
            Quota.parse(bad)


async def test_a_connector_over_its_quota_gets_429_and_the_others_go_on(test_env, topics, run_dir):
    env = {**test_env, "LGSP_QUOTA_DEFAULT": "0.2/3"}  # three requests, then one every five seconds
    intake = service("intake", env, run_dir / "logs-intake-quota", port=18087).start()
    try:
        async with platform_http(IDENTITIES.client("provincial-portal")) as http:  # no quota of its own: the default
            answers = [
                (await http.get(f"{intake.url}/v1/pickups/00000000-0000-0000-0000-000000000000")) for _ in range(5)
            ]
        assert [r.status_code for r in answers] == [404, 404, 404, 429, 429]
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 5 and "quota" in answers[3].json()["title"]
        async with platform_http(IDENTITIES.client("national-portal")) as http:
            assert (await http.get(f"{intake.url}/v1/pickups/00000000-0000-0000-0000-000000000000")).status_code == 404
    finally:
        intake.stop()
