"""Trust, second pass: what a caller from outside could still do, each tried against the
running platform (real Keycloak tokens, Kafka and PostgreSQL), and refused."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import COMMUNE, IDENTITIES, Agencies, eventually, submission

FORGED_ACTOR = {"name": "Chủ tịch UBND tỉnh", "title": "Chủ tịch"}


async def _submitted(http: httpx.AsyncClient, platform) -> str:
    """A dossier the provincial portal submits at the commune, once routing holds it: its code."""
    r = await http.post(
        f"{platform['intake'].url}/v1/dossiers",
        json=submission(agency_code=COMMUNE),
        auth=IDENTITIES.client("provincial-portal"),
    )
    assert r.status_code == 201, r.text
    await _in_routing(http, platform["routing"].url, r.json()["code"])
    return r.json()["code"]


async def _in_routing(http: httpx.AsyncClient, routing: str, code: str) -> None:
    async def there():
        return (await http.get(f"{routing}/v1/dossiers/{code}", auth=IDENTITIES.operator)).status_code == 200

    await eventually(there, what=f"{code} in routing")


async def test_the_acting_official_is_the_token_s_person_not_the_body_s(platform):
    routing = platform["routing"].url
    async with httpx.AsyncClient(timeout=15) as http:
        code = await _submitted(http, platform)
        # a body that names who acted is refused: the actor is the token's
        r = await http.post(
            f"{routing}/v1/dossiers/{code}/accept",
            json={"agency_code": COMMUNE, "actor": FORGED_ACTOR},
            auth=IDENTITIES.official(COMMUNE),
        )
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


# ---------------------------------------------------------------- bodies: the caller first


async def _raw_request(base: str, head: str, body_sent: bytes = b"", wait_s: float = 5.0) -> tuple[int, float]:
    """Sends a request's head (and part of its body) and waits for the answer without sending
    the rest, as a slow client would: (status, seconds until the answer), or (0, wait_s)."""
    import asyncio
    import time
    from urllib.parse import urlsplit

    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    started = time.perf_counter()
    try:
        writer.write(head.encode("latin-1") + body_sent)
        await writer.drain()
        async with asyncio.timeout(wait_s):
            status_line = await reader.readline()
        return int(status_line.split()[1]), time.perf_counter() - started
    except TimeoutError:
        return 0, wait_s
    finally:
        writer.close()


def _upload_head(path: str, length: int, token: str | None = None, content_type: str = "application/pdf") -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n{auth}\r\n"
    )


async def test_a_slow_anonymous_or_unauthorised_upload_is_refused_before_its_body(platform):
    """4 MB announced, 1 KB sent, the rest never: the answer used to wait for the last byte."""
    documents = platform["documents"].url
    status, _ = await _raw_request(documents, _upload_head("/v1/documents/files", 4_000_000), b"%PDF-" + b"x" * 1000)
    assert status == 401
    portal = await IDENTITIES.client("provincial-portal").token()  # a valid token without the official role
    status, _ = await _raw_request(documents, _upload_head("/v1/documents/files", 4_000_000, portal), b"%PDF-")
    assert status == 403
    # the same at a JSON route of another service
    status, _ = await _raw_request(
        platform["intake"].url, _upload_head("/v1/dossiers", 500_000, content_type="application/json"), b'{"channel":'
    )
    assert status == 401


async def test_only_the_upload_takes_a_large_body_and_its_limit_holds_as_bytes_arrive(platform):
    documents = platform["documents"].url
    official = IDENTITIES.official("000.00.12.H40")
    async with httpx.AsyncClient(timeout=30, auth=official) as http:
        # a JSON route of the documents service takes what any JSON route does, not a file's size
        r = await http.post(
            f"{documents}/v1/documents",
            content=b"{" + b" " * 2_000_000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413, r.text

        async def chunks():  # no Content-Length: the limit is found as the bytes come
            yield b"%PDF-"
            for _ in range(25):
                yield b"x" * 1_000_000

        r = await http.post(
            f"{documents}/v1/documents/files", content=chunks(), headers={"content-type": "application/pdf"}
        )
        assert r.status_code == 413, r.text


async def test_an_agency_s_document_storage_has_a_quota(platform):
    """The run's documents service gives each agency 20 MB (conftest.py): an agency nobody
    else uploads for stores 12 MB, and the next new 12 MB are refused; the same file again is
    no new storage."""
    documents = platform["documents"].url
    async with httpx.AsyncClient(timeout=60, auth=IDENTITIES.official("000.03.13.H40")) as http:
        pdf = {"content-type": "application/pdf"}
        first = b"%PDF-1.7\n" + b"a" * 12_000_000
        r = await http.post(f"{documents}/v1/documents/files", content=first, headers=pdf)
        assert r.status_code == 201, r.text
        r = await http.post(f"{documents}/v1/documents/files", content=first, headers=pdf)
        assert r.status_code == 201, r.text  # already stored: counts once
        r = await http.post(f"{documents}/v1/documents/files", content=b"%PDF-1.7\n" + b"b" * 12_000_000, headers=pdf)
        assert r.status_code == 413 and "000.03.13.H40" in r.json()["title"], r.text


# ---------------------------------------------------------------- the audit log's growth


async def test_anonymous_refusals_do_not_grow_the_audit_log_without_bound(platform, test_env):
    """Every 401 used to be one row, forever, at no cost to the sender."""
    import uuid

    import asyncpg

    per_minute = int(test_env["LGSP_AUDIT_ANONYMOUS_PER_MINUTE"])
    prefix = f"flood-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=15) as http:
        for i in range(per_minute + 100):
            r = await http.post(
                f"{platform['routing'].url}/v1/dossiers/X/accept",
                json={"agency_code": COMMUNE},
                headers={"X-Request-Id": f"{prefix}-{i}"},
            )
            assert r.status_code == 401
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        rows = await conn.fetchval(
            f'SELECT count(*) FROM "{test_env["LGSP_SCHEMA_PREFIX"]}routing".audit_log WHERE request_id LIKE $1',
            prefix + "-%",
        )
    finally:
        await conn.close()
    assert 0 < rows <= per_minute


# ---------------------------------------------------------------- documents and dossiers


async def test_only_an_agency_on_the_dossier_s_route_may_attach_a_document_to_it(platform):
    """A document from an agency the dossier never passes through used to appear on the
    dossier's timeline (and could then be named as its decision)."""
    routing = platform["routing"].url
    stranger = "000.00.05.H40"
    async with httpx.AsyncClient(timeout=30) as http:
        code = await _submitted(http, platform)
        dossier = (await http.get(f"{routing}/v1/dossiers/{code}", auth=IDENTITIES.operator)).json()
        decisions = platform.decisions()
        theirs = await decisions.issue(dossier, stranger, number=f"{code}/LA")
        ours = await decisions.issue(dossier, COMMUNE)

        async def dead_lettered():
            letters = (
                await http.get(
                    f"{routing}/v1/operations/dead-letters", params={"limit": 1000}, auth=IDENTITIES.operator
                )
            ).json()["pending"]
            return [x for x in letters if x["event_id"] and f"{code}/LA" in x["reason"]]

        letters = await eventually(dead_lettered, what="routing to dead-letter the stranger's document")
        assert stranger in letters[0]["reason"] and "not on that dossier's route" in letters[0]["reason"]

        async def ours_linked():
            docs = (await http.get(f"{routing}/v1/dossiers/{code}", auth=IDENTITIES.operator)).json()["documents"]
            return docs if any(x["document_id"] == ours for x in docs) else None

        docs = await eventually(ours_linked, what="the commune's own document on the dossier")
        assert theirs not in {x["document_id"] for x in docs}
        timeline = (await http.get(f"{routing}/v1/dossiers/{code}/timeline", auth=IDENTITIES.operator)).json()
        assert not [e for e in timeline if e["agency_code"] == stranger], timeline
        # routing only reads the document topic: a re-drive leaves that letter where it is (it was a 500)
        r = await http.post(f"{routing}/v1/operations/dead-letters/redrive", auth=IDENTITIES.operator)
        assert r.status_code == 200, r.text


async def test_a_manager_reads_the_documents_report_of_their_own_area_only(platform, clock):
    """A district manager used to read every official's figures across the province."""
    from shared.reference import load_reference
    from shared.reference.calendar import LOCAL_TZ

    department, province, district = "000.00.05.H40", "000.00.00.H40", "000.00.12.H40"
    await platform.decisions().issue(
        {"code": "000.00.05.H40-000000-0000", "steps": [{"agency_code": province}]},
        department,
        number=f"{clock.now().timestamp():.0f}/SXD",
    )
    month = clock.now().astimezone(LOCAL_TZ).strftime("%Y-%m")
    documents = platform["documents"].url
    area = load_reference("three_level").catalogue.area(district)
    async with httpx.AsyncClient(timeout=15) as http:

        async def province_wide():
            r = (
                await http.get(
                    f"{documents}/v1/reports/documents",
                    params={"month": month},
                    auth=IDENTITIES.person("manager-province"),
                )
            ).json()
            sent = any(o["agency_code"] == department for o in r["outgoing"])
            return r if sent and any(row["agency_code"] == province for row in r["incoming"]) else None

        await eventually(province_wide, what="the department's document, sent and arrived, in the province's report")
        mine = (
            await http.get(
                f"{documents}/v1/reports/documents", params={"month": month}, auth=IDENTITIES.person("manager-district")
            )
        ).json()
        for part in ("incoming", "officials", "outgoing"):
            assert {row["agency_code"] for row in mine[part]} <= area, (part, mine[part])


# ---------------------------------------------------------------- who emitted an event


async def test_a_service_writing_another_s_event_type_is_dead_lettered_and_nothing_acts_on_it(
    platform, test_env, clock
):
    """notify holds WRITE on the dossier topic (it could always publish there): it used to be
    able to publish `dossier.resolved` and have intake and the portal believe it."""
    import uuid
    from datetime import timedelta

    from aiokafka import AIOKafkaProducer

    from shared.events import DossierResolved, Envelope
    from shared.kafka_access import KafkaAccess, local_password
    from tests.helpers import RESULT, signed

    intake = platform["intake"].url
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{intake}/v1/dossiers", json=submission(agency_code=COMMUNE), auth=IDENTITIES.client("provincial-portal")
        )
        assert r.status_code == 201, r.text
        dossier = r.json()
        now = clock.now()
        resolved = DossierResolved(
            dossier_id=uuid.UUID(dossier["id"]),
            dossier_code=dossier["code"],
            at=now,
            outcome="approved",
            agency_code=COMMUNE,
            result_document=RESULT,
            due_at=now + timedelta(days=1),
            on_time=True,
            actor={"name": "Chủ tịch UBND tỉnh", "title": "Chủ tịch"},
        )
        forged = [
            signed(Envelope.new(resolved, "/lgsp/routing"), "notify"),  # routing's name, notify's key
            signed(Envelope.new(resolved, "/lgsp/notify"), "notify"),
        ]  # notify's own name
        producer = AIOKafkaProducer(
            **KafkaAccess(test_env["LGSP_KAFKA_BOOTSTRAP"], "notify", local_password("notify")).options()
        )
        await producer.start()
        try:
            for env in forged:
                await producer.send_and_wait(
                    f"{test_env['LGSP_TOPIC_PREFIX']}.dossier", value=env.data, key=env.key, headers=env.headers()
                )
        finally:
            await producer.stop()

        async def letters():
            pending = (
                await http.get(f"{intake}/v1/operations/dead-letters", params={"limit": 1000}, auth=IDENTITIES.operator)
            ).json()["pending"]
            found = [x for x in pending if x["event_id"] in {e.id for e in forged}]
            return found if len(found) == 2 else None

        found = await eventually(letters, what="intake to dead-letter both forged events")
        assert all(x["reason"].startswith("provenance:") for x in found), found
        view = (await http.get(f"{intake}/v1/dossiers/{dossier['code']}", auth=IDENTITIES.operator)).json()
        assert view["status"] != "resolved", view


# ---------------------------------------------------------------- the database


async def test_the_database_trusts_nobody_and_services_cannot_change_its_tables(platform, local_stack, test_env):
    """PostgreSQL took any local connection without a password, and the services connected as
    its superuser, which could drop the trigger that keeps the audit log append-only."""
    import asyncpg

    from ops.stack import service_database_url

    for url in (
        f"postgresql://lgsp@127.0.0.1:{local_stack.pg_port}/lgsp",
        f"postgresql://lgsp:wrong@127.0.0.1:{local_stack.pg_port}/lgsp",
    ):
        with pytest.raises(asyncpg.InvalidPasswordError):  # connecting without the owner's password
            await (await asyncpg.connect(url, timeout=10)).close()
    owner = await asyncpg.connect(local_stack.database_url)
    try:
        # the running services are connected as their own roles, none a superuser
        prefix = test_env["LGSP_SCHEMA_PREFIX"]
        seen = await owner.fetch(
            "SELECT DISTINCT substring(a.application_name from $2) AS service, a.usename, r.rolsuper "
            "FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name ~ $1",
            f"^{prefix}(intake|routing|postal|notify|documents)(-|$)",
            f"^{prefix}([a-z]+)",
        )
        assert {r["service"] for r in seen} == {"intake", "routing", "postal", "notify", "documents"}, seen
        assert all(not r["rolsuper"] and r["usename"] == f"lgsp_{r['service']}" for r in seen), seen
    finally:
        await owner.close()
    schema = f"{test_env['LGSP_SCHEMA_PREFIX']}routing"
    routing = await asyncpg.connect(service_database_url(local_stack.database_url, "routing"))
    try:
        for ddl in (
            f'DROP TRIGGER audit_log_append_only ON "{schema}".audit_log',
            f'CREATE TABLE "{schema}".smuggled (x int)',
            f'ALTER TABLE "{schema}".dossiers ADD COLUMN x int',
            f'UPDATE "{schema}".audit_log SET reason = NULL',
            f'DELETE FROM "{schema}".audit_log',
            f'SELECT 1 FROM "{test_env["LGSP_SCHEMA_PREFIX"]}intake".dossiers LIMIT 1',
        ):
            try:
                await routing.execute(ddl)
            except asyncpg.InsufficientPrivilegeError:
                continue
            raise AssertionError(f"routing's role may: {ddl}")
        assert await routing.fetchval(f'SELECT count(*) FROM "{schema}".dossiers') >= 0  # its own rows: yes
    finally:
        await routing.close()
