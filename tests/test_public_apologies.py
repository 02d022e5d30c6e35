"""The public list of apologies (seed 004: "công khai xin lỗi"; Decision 766's publicity): anyone
may read it without a token; it names the agency, the dossier's code, its procedure and the new
date, and nobody's name, number or address."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.helpers import APPLICANT, COMMUNE, IDENTITIES, eventually, submission


async def test_a_late_dossiers_apology_is_published_without_personal_data(platform, clock):
    intake, routing = platform["intake"].url, platform["routing"].url
    async with httpx.AsyncClient(timeout=15) as http:
        # entered after an outage, ten days late: the scheduler finds it overdue and apologises
        body = submission("1.001193", channel="counter", received_at=(clock.now() - timedelta(days=10)).isoformat())
        r = await http.post(f"{intake}/v1/dossiers", json=body, auth=IDENTITIES.counter(COMMUNE))
        assert r.status_code == 201, r.text
        code = r.json()["code"]

        async def published():
            page = await http.get(f"{routing}/v1/public/apologies", params={"limit": 200})  # no token
            assert page.status_code == 200, page.text
            return next((a for a in page.json() if a["dossier_code"] == code), None)

        apology = await eventually(published, timeout=60, what="the apology published")
        assert apology["agency_code"] == COMMUNE and "xin lỗi" in apology["apology"]
        assert apology["procedure_name"] == "Đăng ký khai sinh"
        text = (await http.get(f"{routing}/v1/public/apologies", params={"limit": 200})).text
        for personal in (APPLICANT["full_name"], APPLICANT["id_number"], APPLICANT["phone"], APPLICANT["address"]):
            assert personal not in text
        # the next page starts before the oldest one shown
        older = await http.get(f"{routing}/v1/public/apologies", params={"before": apology["at"], "limit": 200})
        assert code not in [a["dossier_code"] for a in older.json()]
        assert (await http.get(f"{routing}/v1/public/apologies", params={"limit": 201})).status_code == 422
