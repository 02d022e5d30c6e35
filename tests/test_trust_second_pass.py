"""Trust, second pass: what a caller from outside could still do, each tried against the
running platform (real Keycloak tokens, Kafka and PostgreSQL), and refused."""

from __future__ import annotations

import httpx

from tests.helpers import COMMUNE, IDENTITIES, Agencies, eventually, submission

FORGED_ACTOR = {"name": "Chủ tịch UBND tỉnh", "title": "Chủ tịch"}


async def _in_routing(http: httpx.AsyncClient, routing: str, code: str) -> None:
    async def there():
        return (await http.get(f"{routing}/v1/dossiers/{code}", auth=IDENTITIES.operator)).status_code == 200

    await eventually(there, what=f"{code} in routing")


async def test_the_acting_official_is_the_token_s_person_not_the_body_s(platform):
    intake, routing = platform["intake"].url, platform["routing"].url
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(f"{intake}/v1/dossiers", json=submission(agency_code=COMMUNE),
                            auth=IDENTITIES.client("provincial-portal"))
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        await _in_routing(http, routing, code)
        # a body that names who acted is refused: the actor is the token's
        r = await http.post(f"{routing}/v1/dossiers/{code}/accept", json={"agency_code": COMMUNE, "actor": FORGED_ACTOR},
                            auth=IDENTITIES.official(COMMUNE))
        assert r.status_code == 422 and "actor" in r.text, r.text
        r = await Agencies(http, routing).act(code, "accept", COMMUNE)
        assert r.status_code == 200, r.text

        async def accepted_entries():
            timeline = (await http.get(f"{routing}/v1/dossiers/{code}/timeline", auth=IDENTITIES.operator)).json()
            return [e for e in timeline if e["event_type"] == "vn.lgsp.dossier.step_accepted.v1"]

        await eventually(accepted_entries, what="the acceptance on the timeline")
        accepted = await accepted_entries()
        assert len(accepted) == 1, accepted
        # the person's name as Keycloak has it (first and last name of official-<commune>)
        assert accepted[0]["summary"].startswith("Cán bộ Ủy ban nhân dân xã Ninh Hải"), accepted[0]
        assert "Chủ tịch" not in accepted[0]["summary"]
