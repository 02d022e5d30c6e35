"""The console in a real browser (Debian's Chromium, driven by Playwright) against the real
platform: people sign in at the identity provider's own login page, then read and act.

Screenshots of each page are saved under .lgsp/artifacts/console/ (the README's come from
here), and each page is checked with axe-core for accessibility basics (labels, contrast,
landmarks, keyboard focus)."""

from __future__ import annotations

import io
import re
import shutil
from datetime import timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from axe_playwright_python.async_playwright import Axe
from openpyxl import load_workbook

from ops.identity import local_secret
from ops.processes import console as console_process
from ops.signing import document_pdf, sign_twice
from ops.stack import REPO_ROOT
from tests.helpers import COMMUNE, IDENTITIES, Agencies, eventually, kafka_operator, platform_http, submission

PORT = 18085  # registered as a redirect target of the lgsp-console client (ops/identity.py)
ARTIFACTS = REPO_ROOT / ".lgsp" / "artifacts" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
BIRTH = "1.001193"  # Đăng ký khai sinh: its name carries the diacritics checked below
BIRTH_NAME = "Đăng ký khai sinh"


@pytest.fixture(scope="module")
def console(platform, test_env, run_dir):
    urls = {name: platform[name].url for name in ("intake", "routing", "postal", "notify", "documents")}
    proc = console_process(test_env, run_dir / "logs", urls, port=PORT).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(
            "Debian's chromium is required for the console's browser tests: `make setup` installs it", pytrace=False
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def signed_in(browser, console, username: str, path: str = "/", width: int = 1280):
    """A new browser session: open ``path``, be sent to the identity provider, sign in there."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale="vi-VN")
    page = await context.new_page()
    await page.goto(f"{console.url}{path}")
    await page.wait_for_selector("#username", timeout=30_000)  # Keycloak's own login form
    await page.fill("#username", username)
    await page.fill("#password", local_secret(username))
    await page.click("#kc-login")
    await page.wait_for_url(re.compile("^" + re.escape(console.url)), timeout=30_000)
    return page


async def accessibility_problems(page) -> list[str]:
    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} element(s)" for v in results.response["violations"]
    ]


async def test_an_operator_signs_in_finds_a_dossier_and_sees_its_timeline_and_trace(console, browser, platform):
    async with platform_http(timeout=15) as http:
        r = await http.post(f"{platform['intake'].url}/v1/dossiers", json=submission(BIRTH))
        assert r.status_code == 201, r.text
        dossier = r.json()

        async def in_timeline():
            t = await http.get(f"{platform['routing'].url}/v1/dossiers/{dossier['code']}/timeline")
            return t.status_code == 200 and len(t.json()) >= 2

        await eventually(in_timeline, what="the dossier's first hops in routing's timeline")

    page = await signed_in(browser, console, "operator")
    assert await page.locator("h1").inner_text() == "Tình hình giải quyết thủ tục hành chính"
    await page.fill("#find-code", dossier["code"])
    await page.keyboard.press("Enter")  # the search works from the keyboard
    await page.wait_for_url(f"**/dossiers/{dossier['code']}")
    assert dossier["code"] in await page.locator("h1").inner_text()
    assert BIRTH_NAME in await page.locator("dl.facts").inner_text()  # diacritics intact in the DOM

    timeline = page.locator("ol.timeline li")
    assert await timeline.count() >= 2
    assert "intake" in await timeline.first.inner_text()

    async def spans_shown():  # the span files are written in batches: look again until they are there
        await page.reload()
        return await page.locator("ol.waterfall li").count() >= 3 or None

    await eventually(spans_shown, what="the trace's spans on the dossier's page", timeout=30)
    services = set(await page.locator("ol.waterfall .svc").all_inner_texts())
    assert {"intake", "routing"} <= services, services
    assert dossier["trace_id"] in await page.locator("dl.facts").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "dossier.png"), full_page=True)
    assert await accessibility_problems(page) == []
    await page.context.close()


async def test_an_operator_redrives_a_dead_letter_and_it_leaves_the_list(console, browser, test_env, local_stack):
    # a record no service can read: each parks it in its dead-letter topic
    producer = AIOKafkaProducer(**kafka_operator().options())
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            f"{test_env['LGSP_TOPIC_PREFIX']}.dossier",
            b"{not json",
            key=b"console-test",
            headers=[("ce_type", b"vn.lgsp.dossier.submitted.v1")],
        )
    finally:
        await producer.stop()
    assert sent.offset >= 0

    page = await signed_in(browser, console, "operator", "/operations")
    rows = page.locator("table.letters[data-service='notify'] tbody tr")

    async def letter_listed():
        await page.goto(f"{console.url}/operations")
        for text in await rows.all_inner_texts():
            if "vn.lgsp.dossier.submitted.v1" in text:
                return text
        return None

    await eventually(letter_listed, what="notify's dead letter on the operations page", timeout=30)
    # every service answers with its consumer lag, outbox backlog and pending dead letters
    lags = await page.locator("td[data-lag]").all_inner_texts()
    assert len(lags) == 5 and all(x.isdigit() for x in lags), lags
    assert int(await page.locator("td[data-dead-letters='notify']").inner_text()) >= 1
    before = await rows.count()
    positions = [t.split("\t")[0].strip() for t in await rows.all_inner_texts()]
    assert await accessibility_problems(page) == []
    await page.screenshot(path=str(ARTIFACTS / "operations.png"), full_page=True)

    await page.click("a[href='/operations/dead-letters/notify/redrive']")
    assert "notify" in await page.locator("h1").inner_text()
    await page.click("button:has-text('Xác nhận gửi lại')")  # the confirmation step
    await page.wait_for_url("**/operations?redriven=*")
    assert f"Đã gửi lại {before} thư lỗi của dịch vụ notify" in await page.locator("p.notice").inner_text()
    # the letters that were listed are gone (one that fails again comes back as a new letter, at a new position)
    remaining = [t.split("\t")[0].strip() for t in await rows.all_inner_texts()]
    assert not set(positions) & set(remaining), (positions, remaining)

    # the service recorded who re-drove its dead letters
    conn = await asyncpg.connect(local_stack.database_url)
    try:
        row = await conn.fetchrow(
            f"SELECT username, status, route FROM {test_env['LGSP_SCHEMA_PREFIX']}notify.audit_log "
            "WHERE route = '/v1/operations/dead-letters/redrive' ORDER BY at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert row is not None and (row["username"], row["status"]) == ("operator", 200)
    await page.context.close()


async def test_a_manager_sees_an_overdue_dossier_appear_on_the_overview_once_the_scheduler_apologises(
    console, browser, platform, clock
):
    page = await signed_in(browser, console, "manager-province")
    await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    assert await accessibility_problems(page) == []
    # entered at the counter after an outage: received 25 days ago, a 3-day procedure (older than
    # any other test's late entries, so first on the list of the most late)
    async with platform_http(timeout=15) as http:
        r = await http.post(
            f"{platform['intake'].url}/v1/dossiers",
            json=submission("1.000894", channel="counter", received_at=(clock.now() - timedelta(days=25)).isoformat()),
            auth=IDENTITIES.counter(COMMUNE),
        )
        assert r.status_code == 201, r.text
        code = r.json()["code"]

    # no reload: the overview refreshes its figures by itself
    row = page.locator("section[aria-labelledby='h-late'] tr", has_text=code)
    await row.wait_for(timeout=30_000)

    async def apologised():  # the routing scheduler's apology reaches intake, and the row says so
        cells = await row.locator("td").all_inner_texts()
        return cells if cells and cells[-1] == "1" else None

    cells = await eventually(apologised, what="the apology on the overview's row", timeout=30, interval=1)
    assert cells[0] == code
    assert int(await page.locator("[data-figure='overdue']").inner_text()) >= 1
    await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    await page.context.close()


async def test_a_district_manager_sees_the_district_the_whole_score_card_and_exports_it(console, browser, platform):
    async with platform_http(timeout=15) as http:  # a dossier of the district's commune today
        r = await http.post(
            f"{platform['intake'].url}/v1/dossiers",
            json=submission("1.001193", channel="counter"),
            auth=IDENTITIES.counter(COMMUNE),
        )
        assert r.status_code == 201, r.text
    page = await signed_in(browser, console, "manager-district")
    await page.locator("table.agencies small").first.wait_for(timeout=30_000)
    assert await page.locator("#h-total").get_attribute("data-area") == "000.00.12.H40"
    assert await page.locator("#h-total").inner_text() == "Ủy ban nhân dân huyện Hoa Lư"
    # only the district's own agencies and communes are listed
    codes = await page.locator("table.agencies small").all_inner_texts()
    assert codes and all(c.split("·")[-1].strip().endswith(".12.H40") for c in codes), codes
    # the five groups of Decision 766, each scored, none left blank
    scores = await page.locator("section[aria-labelledby='h-766'] tr[data-group] td:nth-child(2)").all_inner_texts()
    assert len(scores) == 5 and all(re.fullmatch(r"\d+(\.\d+)? / \d+", s) for s in scores), scores
    assert await accessibility_problems(page) == []
    async with page.expect_download() as download:
        await page.click("a[data-export='xlsx']")
    saved = await download.value
    assert saved.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO((await saved.path()).read_bytes()))["Theo cơ quan"]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    exported = {row[0] for row in rows if row[0]}
    assert exported == {c.split("·")[-1].strip() for c in codes}
    await page.context.close()


async def test_a_citizen_rates_on_the_public_page_and_reads_the_catalogue_without_signing_in(
    console, browser, platform
):
    async with platform_http(timeout=15) as http:
        r = await http.post(
            f"{platform['intake'].url}/v1/dossiers",
            json=submission("1.001193", channel="counter"),
            auth=IDENTITIES.counter(COMMUNE),
        )
        assert r.status_code == 201, r.text
        code, key = r.json()["code"], r.json()["lookup_key"]
        agencies = Agencies(http, platform["routing"].url)
        await eventually(lambda: agencies.dossier(code), what="routing has the dossier")
        await agencies.step_through(code)

        async def resolved():
            seen = await http.get(f"{platform['intake'].url}/v1/lookup/{code}", params={"key": key}, auth=None)
            return seen.json()["status"] in ("resolved", "returned")

        await eventually(resolved, what="the result reached intake")
    context = await browser.new_context(locale="vi-VN")
    page = await context.new_page()
    await page.goto(f"{console.url}/danh-gia?ma={code}")  # the link in the result's message
    assert await page.input_value("#code") == code
    assert await accessibility_problems(page) == []
    await page.fill("#key", "WRONGKEY")
    await page.check("#r-satisfied")
    await page.click("button[type=submit]")
    assert "không đúng" in await page.locator("[role=alert]").inner_text()
    await page.fill("#key", key.lower())  # as typed from the slip
    await page.fill("#comment", "Cán bộ hướng dẫn tận tình, thủ tục nhanh gọn")
    await page.click("button[type=submit]")
    assert await page.locator("[data-rated]").get_attribute("data-rated") == "satisfied"
    await page.goto(f"{console.url}/thu-tuc")
    birth = page.locator("tr[data-procedure='1.001193']")
    assert "Đăng ký khai sinh" in await birth.inner_text() and "toàn trình" in await birth.inner_text()
    assert await page.locator("tr[data-procedure='1.000001']").count() == 0  # withdrawn
    business = await page.locator("tr[data-procedure='1.001612']").inner_text()
    assert "Lệ phí: Lệ phí đăng ký doanh nghiệp, 50.000 đồng" in business
    assert (
        "Phí: Phí công bố nội dung đăng ký doanh nghiệp, 100.000 đồng" in business and "Tổng: 150.000 đồng" in business
    )
    assert await accessibility_problems(page) == []
    await context.close()


async def test_each_person_sees_what_their_roles_and_agency_allow(console, browser, platform, pki):
    # the district sends the commune a document signed twice: it shows in the commune's incoming list
    pdf = await sign_twice(
        document_pdf("77/UBND-VP", "Về việc kiểm tra", ["x"]),
        pki.credential("official-000.00.12.H40"),
        pki.credential("agency-000.00.12.H40"),
    )
    async with platform_http(IDENTITIES.official("000.00.12.H40"), timeout=15) as http:
        up = await http.post(
            f"{platform['documents'].url}/v1/documents/files", content=pdf, headers={"content-type": "application/pdf"}
        )
        sent = await http.post(
            f"{platform['documents'].url}/v1/documents",
            json={
                "agency_code": "000.00.12.H40",
                "number": "77/UBND-VP",
                "issued_on": "2026-11-24",
                "summary": "V/v kiểm tra việc tiếp nhận hồ sơ",
                "doc_type": "Công văn",
                "recipients": ["000.21.12.H40"],
                "file_sha256": up.json()["sha256"],
            },
        )
        assert sent.status_code == 201, sent.text

        async def arrived():
            doc = (await http.get(f"{platform['documents'].url}/v1/documents/{sent.json()['id']}")).json()
            return doc["deliveries"][0]["status"] == "arrived"

        await eventually(arrived, what="the document to arrive at the commune")

    # an official may not open the operations page, and is told why
    page = await signed_in(browser, console, "official-000.21.12.h40", "/operations")
    assert await page.locator("h1").inner_text() == "Không có quyền"
    assert "operator" in await page.locator("p.alert").inner_text()
    # their own agency's work lists open; another agency's do not
    await page.goto(f"{console.url}/agencies")
    assert await page.locator("h1").inner_text() == "Ủy ban nhân dân xã Ninh Hải"
    incoming = await page.locator("table.incoming").inner_text()
    assert "77/UBND-VP" in incoming and "V/v kiểm tra việc tiếp nhận hồ sơ" in incoming and "Đã đến" in incoming
    response = await page.goto(f"{console.url}/agencies/000.22.12.H40")
    assert response.status == 403
    await page.context.close()

    # on a phone, the overview still reads
    phone = await signed_in(browser, console, "manager-province", width=390)
    assert await phone.locator("[data-figure='received']").is_visible()
    await phone.screenshot(path=str(ARTIFACTS / "overview-phone.png"), full_page=True)
    await phone.context.close()


# ---------------------------------------------------------------- signing in: what cannot be abused


async def test_the_callback_address_comes_from_configuration_and_the_realm_takes_no_other(console, local_stack):
    """A crafted Host header used to choose where the identity provider sent the code, and the
    realm accepted any port on loopback."""
    from urllib.parse import parse_qs, urlsplit

    import httpx

    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(f"{console.url}/sign-in", headers={"Host": "127.0.0.1:9999"})
        assert r.status_code == 303
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["redirect_uri"] == [f"http://127.0.0.1:{PORT}/auth/callback"]
        # the realm refuses to send a code to any other port of the machine
        elsewhere = {**{k: v[0] for k, v in query.items()}, "redirect_uri": "http://127.0.0.1:9999/auth/callback"}
        r = await http.get(f"{local_stack.issuer}/protocol/openid-connect/auth", params=elsewhere)
        assert r.status_code == 400 and "redirect_uri" in r.text.lower()


async def test_a_sign_in_is_finished_only_by_the_browser_that_started_it(console):
    """The callback used to accept any pending state from any browser: an attacker's state
    and code, carried into a victim's browser (or the other way round), made a session."""
    from urllib.parse import parse_qs, urlsplit

    import httpx

    async with httpx.AsyncClient(timeout=15) as started, httpx.AsyncClient(timeout=15) as other:
        r = await started.get(f"{console.url}/sign-in")
        state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
        assert "lgsp_console_signin" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
        r = await other.get(f"{console.url}/auth/callback", params={"state": state, "code": "a-code"})
        assert r.status_code == 400 and "another browser" in r.text


def test_people_sign_in_by_password_only_on_the_identity_provider_s_page(local_stack):
    """The console's client took the password grant, and nothing limited guessing."""
    import httpx

    token_url = f"{local_stack.issuer}/protocol/openid-connect/token"
    r = httpx.post(
        token_url,
        data={
            "grant_type": "password",
            "client_id": "lgsp-console",
            "username": "operator",
            "password": local_secret("operator"),
        },
    )
    assert r.status_code in (400, 401) and r.json()["error"] in ("unauthorized_client", "invalid_client"), r.text
    # brute-force protection: an account nobody else uses in the tests, guessed at
    target = "official-000.05.13.h40"
    for _ in range(11):
        httpx.post(
            token_url,
            data={"grant_type": "password", "client_id": "lgsp-local-tools", "username": target, "password": "guess"},
        )
    r = httpx.post(
        token_url,
        data={
            "grant_type": "password",
            "client_id": "lgsp-local-tools",
            "username": target,
            "password": local_secret(target),
        },
    )
    assert r.status_code in (400, 401), "the right password still worked after eleven wrong guesses in a row"


async def test_the_command_line_signs_a_person_in_with_the_device_grant(browser, local_stack):
    """`lgsp report` outside the local profile: an address and a code, the person signs in in a
    browser, the command gets the person's token; no password passes through it."""
    import asyncio

    from ops.identity import DeviceSignIn
    from shared.access import TokenValidator

    told: list[str] = []
    source = DeviceSignIn(local_stack.issuer, say=told.append, wait_s=120)
    waiting = asyncio.create_task(source.token())

    async def said():
        return told

    await eventually(said, what="the command to say where to sign in", timeout=30)
    address = re.search(r"Sign in at (\S+) \(code ([A-Z-]+)\)", told[0])
    assert address, told
    context = await browser.new_context(locale="vi-VN")
    page = await context.new_page()
    await page.goto(address.group(1))
    await page.wait_for_selector("#username", timeout=30_000)
    await page.fill("#username", "manager-district")
    await page.fill("#password", local_secret("manager-district"))
    await page.click("#kc-login")
    # the identity provider asks the person to confirm the command's access (a code typed from
    # a phishing message would otherwise grant it silently)
    await page.get_by_role("button", name="Yes").click()
    await page.wait_for_load_state()
    token = await asyncio.wait_for(waiting, 60)
    await context.close()
    caller = await TokenValidator(local_stack.issuer, "lgsp").validate(token)
    assert caller.username == "manager-district" and caller.client_id == "lgsp-cli"
