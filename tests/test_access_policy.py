"""Who may call what, proven for every route of every service against the running platform,
with real tokens from the local stack's identity provider (Keycloak).

For every route in each service's OpenAPI document: it has an entry in the access policy;
anonymous → 401; a caller with none of the entry's roles → 403; for each grant limited by
agency or submitter, a caller with the role on the wrong side of the limit → 403; for each
grant, a caller on the right side is let through (neither 401 nor 403), and every read answers
200 to it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import httpx
import pytest

from ops.clients import component_file, upload_component_files
from ops.identity import MACHINE_CLIENTS, REALM_FILE, ROLES, STAFF_FILE, realm_json, staff_json
from ops.simulators.carrier import sign
from shared.access import Policy, api_routes
from shared.staff import StaffDirectory
from tests.helpers import COMMUNE, IDENTITIES, RESULT, eventually, pay_fee_if_asked, submission, supplement_documents

OTHER_COMMUNE = "000.22.12.H40"  # xã Trường Yên: not on the sample dossier's route
DISTRICT = "000.00.12.H40"  # huyện Hoa Lư, which decides the sample dossier
SAMPLE_PROCEDURE = "1.009994"  # a building permit: commune → district office → district committee → commune
PROVINCE_CENTRE = "000.00.01.H40"
POLICY = Policy.load()

# One identity per role, each holding that role only (the driver holds several: not used here).
BY_ROLE = {
    "portal": lambda: IDENTITIES.client("provincial-portal"),  # submits the sample dossier
    "counter": lambda: IDENTITIES.client("counter-ninh-hai"),
    "official": lambda: IDENTITIES.official(COMMUNE),
    "manager": lambda: IDENTITIES.person("manager-district"),
    "operator": lambda: IDENTITIES.operator,
    "carrier": lambda: IDENTITIES.carrier,
}
AGENCY_OF_ROLE = {"counter": COMMUNE, "official": COMMUNE, "manager": DISTRICT}
# On the wrong side of each limit: another agency, or another portal.
WRONG_SIDE = {
    "portal": lambda: IDENTITIES.client("national-portal"),
    "counter": lambda: IDENTITIES.client("counter-province-centre"),
    "official": lambda: IDENTITIES.official(OTHER_COMMUNE),
    "manager": lambda: IDENTITIES.person("manager-province"),
}


@dataclass
class Sample:
    code: str
    dossier_id: str
    pickup_id: str
    file_sha256: str  # one of the dossier's component files


def test_the_policy_covers_every_route_and_nothing_else():
    """In-process: every route of every service's app has an entry, and every entry a route."""
    import os

    os.environ.setdefault("LGSP_PROFILE", "local")
    from services.console.app import create_app as console
    from services.documents.app import create_app as documents
    from services.intake.app import create_app as intake
    from services.notify.app import create_app as notify
    from services.postal.app import create_app as postal
    from services.routing.app import create_app as routing

    for name, factory in (
        ("intake", intake),
        ("routing", routing),
        ("postal", postal),
        ("notify", notify),
        ("documents", documents),
        ("console", console),
    ):
        routes = api_routes(factory())
        assert POLICY.missing(name, routes) == [], f"{name}: routes without an access policy"
        stale = set(POLICY.services[name]) - {f"{m} {p}" for m, p in routes}
        assert not stale, f"{name}: policy entries for routes that do not exist: {stale}"
    used = {g.role for entries in POLICY.services.values() for e in entries.values() for g in e.grants}
    assert used <= set(ROLES), f"roles the realm does not define: {used - set(ROLES)}"


def test_the_realm_file_is_the_generators():
    assert REALM_FILE.read_text(encoding="utf-8") == realm_json(), "run `lgsp realm` and commit the file"
    assert STAFF_FILE.read_text(encoding="utf-8") == staff_json(), "run `lgsp realm` and commit the staff file"
    directory = StaffDirectory.load(STAFF_FILE)
    # a commune's late documents reach its official and the district's manager above it
    assert directory.mailboxes("000.21.12.H40") == [
        "official-000.21.12.h40@lgsp.example.vn",
        "manager-district@lgsp.example.vn",
    ]
    assert [p.username for p in directory.officials("000.21.12.H40")] == ["official-000.21.12.h40"]
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    assert {c.client_id for c in MACHINE_CLIENTS} <= {c["clientId"] for c in realm["clients"]}


@pytest.fixture(scope="module")
async def sample(platform) -> Sample:
    """A dossier and a pickup submitted by the provincial portal at the sample commune."""
    intake, routing = platform["intake"].url, platform["routing"].url
    portal = BY_ROLE["portal"]()
    async with httpx.AsyncClient(timeout=15, auth=portal) as http:
        await upload_component_files(http, intake)
        r = await http.post(f"{intake}/v1/dossiers", json=submission(SAMPLE_PROCEDURE, agency_code=COMMUNE))
        assert r.status_code == 201, r.text
        dossier = await pay_fee_if_asked(http, intake, platform["payment"].url, r.json())
        p = await http.post(f"{intake}/v1/pickups", json=submission(channel="postal", agency_code=COMMUNE))
        assert p.status_code == 202, p.text
    async with httpx.AsyncClient(timeout=15, auth=IDENTITIES.operator) as http:

        async def in_routing():
            return (await http.get(f"{routing}/v1/dossiers/{dossier['code']}")).status_code == 200

        await eventually(in_routing, what="the sample dossier in routing")
    first_file = submission(SAMPLE_PROCEDURE)["documents"][0]["sha256"]
    return Sample(dossier["code"], dossier["id"], p.json()["pickup_id"], first_file)


def _request(method: str, path: str, sample: Sample, agency: str | None, now: float) -> dict:
    """The request a caller acting for ``agency`` would make on this route."""
    url = (
        path.replace("{code}", sample.code)
        .replace("{pickup_id}", sample.pickup_id)
        .replace("{dossier_id}", sample.dossier_id)
        .replace("{agency_code}", agency or COMMUNE)
        .replace("{sha256}", sample.file_sha256)
    )
    request: dict = {"method": method, "url": url}
    if path.startswith("/v1/reports"):
        request["params"] = {"from": "2026-01-01T00:00:00+07:00", "to": "2027-01-01T00:00:00+07:00"}
    if method != "POST":
        return request
    if path == "/v1/files":
        request.update(content=component_file("TP1", "Tờ khai"), headers={"content-type": "application/pdf"})
    elif path == "/v1/dossiers":
        request["json"] = submission(agency_code=agency or COMMUNE)
    elif path == "/v1/pickups":
        request["json"] = submission(channel="postal", agency_code=agency or COMMUNE)
    elif path.endswith("/supplements"):
        request["json"] = {"documents": supplement_documents()}
    elif path.endswith("/rating"):
        request["json"] = {"rating": "satisfied"}
    elif path.endswith("/withdraw"):
        request["json"] = {"reasons": ["Công dân xin rút hồ sơ"]}
    elif path == "/v1/carrier/webhooks":
        body = json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "shipment_id": "s-1",
                "reference": "no-such-shipment",
                "status": "in_transit",
                "at": now,
            }
        ).encode()
        ts = str(int(now))  # the webhook's freshness is judged on the platform clock
        request.update(
            content=body,
            headers={
                "content-type": "application/json",
                "X-Carrier-Timestamp": ts,
                "X-Carrier-Signature": sign(ts, body),
            },
        )
    else:  # an agency's action on a step
        body = {
            "agency_code": agency or COMMUNE,
            "reasons": ["Thiếu giấy tờ"],
            "outcome": "approved",
            "result_document": RESULT,
            "method": "counter",
        }
        request["json"] = body
    return request


async def _call(http: httpx.AsyncClient, base: str, request: dict, auth) -> httpx.Response:
    request = dict(request)
    return await http.request(request.pop("method"), base + request.pop("url"), auth=auth, **request)


@pytest.mark.parametrize("service", ["intake", "routing", "postal", "notify"])
async def test_every_route_refuses_the_anonymous_the_wrong_role_and_the_other_agency(platform, sample, service, clock):
    base = platform[service].url
    now = clock.now().timestamp()
    problems: list[str] = []
    async with httpx.AsyncClient(timeout=15) as http:
        document = (await http.get(f"{base}/openapi.json")).json()
        routes = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
        assert routes, "the OpenAPI document lists no routes"
        for method, path in routes:
            entry = POLICY.entry(service, method, path)
            if entry is None:
                problems.append(f"{method} {path}: no policy entry")
                continue
            if entry.public:
                continue
            what = f"{method} {path}"
            # anonymous, and a token that is not one
            for auth, label in ((None, "anonymous"), (_Bearer("not-a-token"), "a forged token")):
                r = await _call(http, base, _request(method, path, sample, None, now), auth)
                if r.status_code != 401:
                    problems.append(f"{what}: {label} got {r.status_code}, not 401")
                elif "WWW-Authenticate" not in r.headers:
                    problems.append(f"{what}: 401 without WWW-Authenticate")
            # a role the entry does not grant
            roles = {g.role for g in entry.grants}
            outsider = next(r for r in BY_ROLE if r not in roles)
            r = await _call(
                http, base, _request(method, path, sample, AGENCY_OF_ROLE.get(outsider), now), BY_ROLE[outsider]()
            )
            if r.status_code != 403:
                problems.append(f"{what}: role {outsider} got {r.status_code}, not 403")
            for grant in entry.grants:
                # the right caller is let through
                right = _request(method, path, sample, AGENCY_OF_ROLE.get(grant.role), now)
                r = await _call(http, base, right, BY_ROLE[grant.role]())
                if r.status_code in (401, 403):
                    problems.append(f"{what}: {grant.role} ({grant.limit}) refused {r.status_code}: {r.text[:200]}")
                elif method == "GET" and r.status_code != 200:
                    problems.append(f"{what}: {grant.role} read got {r.status_code}: {r.text[:200]}")
                if grant.limit == "any":
                    continue
                # the same role, on the wrong side of the limit
                if grant.limit in ("body_agency", "path_agency"):
                    # acting for an agency the token does not carry
                    wrong = _request(method, path, sample, OTHER_COMMUNE if grant.role != "manager" else COMMUNE, now)
                    r = await _call(http, base, wrong, BY_ROLE[grant.role]())
                else:  # dossier_agency, submitter: another agency's or another portal's token
                    r = await _call(http, base, right, WRONG_SIDE[grant.role]())
                # beyond an agency named in the request: 403; beyond a resource it may not see: 404,
                # answered as for a resource that does not exist
                expected = 403 if grant.limit in ("body_agency", "path_agency") else 404
                if r.status_code != expected:
                    problems.append(
                        f"{what}: {grant.role} beyond its {grant.limit} got {r.status_code}, not {expected}"
                    )
    assert not problems, "\n".join(problems)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


# What the platform must refuse whatever the policy file says: the matrix above follows the
# policy, this table follows the requirements, so a policy loosened by mistake fails here.
MUST_REFUSE = [
    # (service, method, path, who, acting for) — an official of another commune naming ours
    *[
        ("routing", "POST", f"/v1/dossiers/{{code}}/{action}", "other official", COMMUNE)
        for action in ("accept", "forward", "request-supplement", "resolve", "return", "stop", "withdraw")
    ],
    ("routing", "GET", "/v1/dossiers/{code}", "other official", None),
    ("routing", "GET", "/v1/dossiers/{code}/timeline", "other official", None),
    # an agency off the dossier's route does not read its files, nor another portal
    ("routing", "GET", "/v1/dossiers/{code}/files", "other official", None),
    ("routing", "GET", "/v1/dossiers/{code}/files/{sha256}", "other official", None),
    ("intake", "GET", "/v1/dossiers/{code}/files/{sha256}", "other portal", None),
    ("routing", "GET", "/v1/agencies/{agency_code}/dossiers", "other official", COMMUNE),
    # a portal reads only what it submitted
    ("intake", "GET", "/v1/dossiers/{code}", "other portal", None),
    ("intake", "GET", "/v1/dossiers/{code}/slip", "other portal", None),
    ("intake", "POST", "/v1/dossiers/{code}/supplements", "other portal", None),
    ("intake", "GET", "/v1/pickups/{pickup_id}", "other portal", None),
    # a counter submits only for its own agency
    ("intake", "POST", "/v1/dossiers", "counter", "000.00.01.H40"),
    # operators' and managers' views are theirs
    ("intake", "GET", "/v1/portal-sync", "portal", None),
    ("intake", "GET", "/v1/reports", "portal", None),
    ("notify", "GET", "/v1/dossiers/{code}/notifications", "official", None),
    ("postal", "GET", "/v1/dossiers/{dossier_id}/shipments", "portal", None),
    ("postal", "POST", "/v1/carrier/webhooks", "portal", None),
]
WHO = {
    "other official": lambda: IDENTITIES.official(OTHER_COMMUNE),
    "other portal": WRONG_SIDE["portal"],
    "counter": BY_ROLE["counter"],
    "portal": BY_ROLE["portal"],
    "official": BY_ROLE["official"],
}


async def test_cross_agency_and_cross_portal_calls_are_refused(platform, sample, clock):
    now = clock.now().timestamp()
    answers = {}
    async with httpx.AsyncClient(timeout=15) as http:
        for service, method, path, who, agency in MUST_REFUSE:
            r = await _call(http, platform[service].url, _request(method, path, sample, agency, now), WHO[who]())
            answers[f"{who}: {method} {path}"] = r.status_code
    # another agency's or portal's dossier (or pickup) is answered as one that does not exist
    expected = {
        k: 404
        if k.startswith(("other",))
        and any(x in k for x in ("GET /v1/dossiers/{code}", "GET /v1/pickups", "/supplements", "/withdraw"))
        else 403
        for k in answers
    }
    assert answers == expected


async def test_a_resource_the_caller_may_not_see_is_answered_like_one_that_does_not_exist(platform, sample):
    """The same status and words for another agency's dossier as for a code that was never
    issued, so that codes cannot be probed; the audit log keeps the real reason."""
    routing, intake = platform["routing"].url, platform["intake"].url
    unknown = sample.code[:-4] + ("0000" if not sample.code.endswith("0000") else "0001")
    async with httpx.AsyncClient(timeout=15) as http:
        for base, path in (
            (routing, "/v1/dossiers/{}"),
            (routing, "/v1/dossiers/{}/timeline"),
            (intake, "/v1/dossiers/{}"),
        ):
            theirs = await http.get(base + path.format(sample.code), auth=WRONG_SIDE["official"]())
            never = await http.get(base + path.format(unknown), auth=WRONG_SIDE["official"]())
            assert theirs.status_code == never.status_code == 404, (theirs.text, never.text)
            assert theirs.json()["title"].replace(sample.code, "X") == never.json()["title"].replace(unknown, "X")


async def test_a_state_change_on_a_dossier_routing_does_not_hold_yet_is_refused(platform):
    """Between intake's answer and routing's creation of the dossier, an agency's withdrawal
    used to pass the access check ("nothing there") and act on the dossier once it existed.
    A dossier the check cannot find is refused for any state-changing call."""
    routing = platform["routing"].url
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{routing}/v1/dossiers/000.22.12.H40-261130-9999/withdraw",
            json={"reasons": ["Công dân xin rút hồ sơ"]},
            auth=WRONG_SIDE["official"](),
        )
        assert r.status_code == 404, r.text
        assert "may see" in r.json()["title"]
