"""Citizens rate how their dossier was handled (Decision 766, group 5): with the slip's lookup
key after the result, or on the counter's device; once per dossier; the comment's numbers and
addresses masked; counted for the handling unit and the official who decided."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tests.helpers import APPLICANT, COMMUNE, IDENTITIES, Agencies, eventually, platform_http, submission


async def test_a_citizen_rates_once_after_the_result_and_the_report_counts_it(platform, clock, test_env):
    intake, routing = platform["intake"].url, platform["routing"].url
    async with platform_http() as http:
        agencies = Agencies(http, routing)
        made = await http.post(
            f"{intake}/v1/dossiers", json=submission("1.001193", channel="counter"), auth=IDENTITIES.counter(COMMUNE)
        )
        assert made.status_code == 201, made.text
        code, key = made.json()["code"], made.json()["lookup_key"]
        rate = f"{intake}/v1/lookup/{code}/rating"
        comment = f"Cán bộ tận tình; gọi lại {APPLICANT['phone']} hoặc CCCD {APPLICANT['id_number']}"

        # before the result: refused, with the reason
        early = await http.post(rate, json={"key": key, "rating": "satisfied"}, auth=None)
        assert early.status_code == 409, early.text

        await eventually(lambda: agencies.dossier(code), what="routing has the dossier")
        await agencies.step_through(code)
        await eventually(
            lambda: _status_is(http, intake, code, key, ("resolved", "returned")), what="the result reached intake"
        )
        wrong = await http.post(rate, json={"key": "WRONGKEY", "rating": "satisfied"}, auth=None)
        assert wrong.status_code == 404
        rated = await http.post(rate, json={"key": key, "rating": "dissatisfied", "comment": comment}, auth=None)
        assert rated.status_code == 201, rated.text
        assert (rated.json()["rating"], rated.json()["source"]) == ("dissatisfied", "lookup")
        again = await http.post(rate, json={"key": key, "rating": "very_satisfied"}, auth=None)
        assert again.status_code == 409  # one rating per dossier
        # the counter's device cannot rate it a second time either
        device = await http.post(
            f"{intake}/v1/dossiers/{code}/rating", json={"rating": "satisfied"}, auth=IDENTITIES.counter(COMMUNE)
        )
        assert device.status_code == 409
        too_long = await http.post(rate, json={"key": key, "rating": "satisfied", "comment": "x" * 501}, auth=None)
        assert too_long.status_code == 422

    # the comment is kept without the phone or ID number
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        kept = await conn.fetchval(
            f"SELECT r.comment FROM {test_env['LGSP_SCHEMA_PREFIX']}intake.ratings r "
            f"JOIN {test_env['LGSP_SCHEMA_PREFIX']}intake.dossiers d ON d.id = r.dossier_id WHERE d.code = $1",
            code,
        )
    finally:
        await conn.close()
    assert kept.startswith("Cán bộ tận tình") and APPLICANT["phone"] not in kept and APPLICANT["id_number"] not in kept

    async with platform_http() as http:
        period = {
            "from": (clock.now() - timedelta(days=1)).isoformat(),
            "to": (clock.now() + timedelta(days=1)).isoformat(),
        }
        r = await http.get(f"{intake}/v1/reports", params={**period, "area": COMMUNE}, auth=IDENTITIES.operator)
        assert r.status_code == 200, r.text
        [row] = [a for a in r.json()["agencies"] if a["agency_code"] == COMMUNE]
        assert row["rated"] >= 1 and row["rated_dissatisfied"] >= 1
        assert any(o["rated_dissatisfied"] >= 1 for o in r.json()["officials"] if o["agency_code"] == COMMUNE)


async def _status_is(http, intake: str, code: str, key: str, statuses: tuple[str, ...]) -> bool:
    r = await http.get(f"{intake}/v1/lookup/{code}", params={"key": key}, auth=None)
    return r.status_code == 200 and r.json()["status"] in statuses
