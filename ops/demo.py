"""``make demo``: the platform on its local stack, for a newcomer to watch.

Starts Kafka and PostgreSQL, the services (shared/services.py) and the third-party simulators (carrier,
SMS/Zalo/e-mail, national portal) as separate processes. First a short morning at a one-stop
counter, told step by step: dossiers submitted through the three channels, moved
across commune, district and province by the agencies, one paused for a supplement, one
entered late after an outage that gets its automatic apology, one refused at receipt.
Then a whole day replayed at speed (a few hundred dossiers, with a progress line), and the
managers' report; then official documents signed twice crossing the levels, one refused on
arrival, a month's worth between agencies and the monthly documents report. The console (services/console) runs beside them from the start; in a
terminal the demo then keeps everything running for people to look around until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from ops import demo_documents
from ops.clients import (
    APPLICANT,
    COMMUNE,
    Agencies,
    Decisions,
    eventually,
    ok,
    pay_fee_if_asked,
    platform_http,
    submission,
    supplement_documents,
)
from ops.demo_day import replay_day
from ops.identity import IDENTITIES, local_secret
from ops.platform import UNTHROTTLED, RunningPlatform, start_stack
from ops.report import fetch_report, period
from ops.timeline import format_timeline
from services.intake.report import render
from shared.clock import Clock, clock_from_env
from shared.reference.calendar import LOCAL_TZ
from shared.scorecard import scorecard_766
from shared.settings import Settings
from shared.traceview import load_trace, render_tree

CITIZENS = [
    {"full_name": "Nguyễn Thị Hồng Nhung", "address": "Số 5, phố Lê Lợi, phường Đông Thành, TP Ninh Bình"},
    {"full_name": "Trần Văn Đức", "address": "Xóm Đồng, xã Ninh Hải, huyện Hoa Lư, Ninh Bình"},
    {"full_name": "Lê Thị Ánh Tuyết", "address": "Thôn Tràng An, xã Trường Yên, huyện Hoa Lư, Ninh Bình"},
    {"full_name": "Phạm Quốc Việt", "address": "Phố Bắc Thành, phường Tân Thành, TP Ninh Bình"},
    {"full_name": "Hoàng Thị Thu Hà", "address": "Thôn Bãi Trữ, xã Ninh Hải, huyện Hoa Lư, Ninh Bình"},
]


def citizen(i: int) -> dict:
    return {**CITIZENS[i % len(CITIZENS)], "id_number": f"0372030045{i:02d}", "phone": f"09123456{i:02d}"}


def say(msg: str = "") -> None:
    print(msg, flush=True)


async def paid_online(http: httpx.AsyncClient, intake: str, payment: str, agencies: Agencies) -> None:
    """A fee paid online: the dossier waits for its payment (the national portal shows the
    financial obligation), the citizen pays on the payment platform, and only then is it processed."""
    r = await http.post(f"{intake}/v1/dossiers", json=submission("1.001612", agency_code="000.00.01.H40"))
    d = ok(r, 201).json()
    say(f"  intake   received  {d['code']}  Đăng ký thành lập doanh nghiệp: chờ nộp lệ phí trực tuyến")
    seen = await pay_fee_if_asked(http, intake, payment, d)
    say(f"  payment  paid      {seen['fee_vnd']:,} đồng at {seen['pay_url']}".replace(",", "."))

    async def settled():
        seen = (await http.get(f"{intake}/v1/dossiers/{d['code']}")).json()
        return seen if seen["payment_status"] == "paid" else None

    seen = await eventually(settled, what="the payment settled")
    await eventually(lambda: agencies.dossier(d["code"]), what="routing to take it once paid", interval=0.2)
    say(f"  payment  paid      receipt {seen['receipt_no']}; the dossier goes to processing")


async def morning(
    intake: str, routing: str, decisions: Decisions, trace_dir, clock: Clock, payment: str | None = None
) -> None:
    async with platform_http(timeout=15) as http:
        agencies = Agencies(http, routing, decisions)

        async def submit(label: str, body: dict) -> dict:
            # a receipt time in the past is the counter's own software's to record
            auth = IDENTITIES.counter(body["agency_code"]) if body.get("received_at") else httpx.USE_CLIENT_DEFAULT
            r = await http.post(f"{intake}/v1/dossiers", json=body, auth=auth)
            d = r.json()
            if r.status_code == 422:
                say(f"  intake   REFUSED   {label}: " + "; ".join(x["message"] for x in d["reasons"]))
                return d
            r.raise_for_status()
            due = datetime.fromisoformat(d["due_at"]).astimezone(timezone(timedelta(hours=7)))
            say(f"  intake   received  {d['code']}  {label}  (hẹn trả {due:%H:%M %d/%m/%Y})")
            if d["status"] == "awaiting_payment" and payment:
                paid = await pay_fee_if_asked(http, intake, payment, d)
                say(f"  payment  paid      {paid['fee_vnd']:,} đồng online; processed once paid".replace(",", "."))
            await eventually(lambda: agencies.dossier(d["code"]), what=f"routing to take {d['code']}", interval=0.2)
            return d

        say("\n[demo] a morning at the counters: submissions through portal, counter and post\n")
        housing = await submit(
            "Hỗ trợ nhà ở cho người có công (xã -> huyện -> tỉnh -> xã)", submission("2.000286", applicant=citizen(1))
        )
        land = await submit(
            "Cấp GCN quyền sử dụng đất lần đầu (xã -> huyện -> xã)",
            submission("1.004227", channel="postal", applicant=citizen(2), result_delivery="postal"),
        )
        marriage = await submit(
            "Đăng ký kết hôn (sẽ cần bổ sung)", submission("1.000894", channel="counter", applicant=citizen(3))
        )
        outage = (clock.now() - timedelta(days=12)).isoformat()
        late = await submit(
            "Đăng ký khai tử, nhập sau sự cố hệ thống (đã quá hạn)",
            submission("1.000656", channel="counter", applicant=citizen(4), received_at=outage),
        )
        await submit(
            "Chứng thực bản sao gửi qua cổng (chỉ nhận tại quầy)",
            submission("2.000908", channel="online", applicant=citizen(5)),
        )
        # a procedure connected to the national population database: the applicant is checked
        # there, and what they did not give (date of birth, permanent address) comes from it
        record = await submit(
            "Cấp Phiếu lý lịch tư pháp (đối chiếu CSDL quốc gia về dân cư)",
            submission("2.000794", agency_code="000.00.01.H40"),
        )
        if record.get("identity_status") == "confirmed":
            say(
                "  intake   identity  confirmed by the national population database; filled from it: "
                + ", ".join(record["identity_prefilled"])
            )
        await submit(
            "Cấp Phiếu lý lịch tư pháp, họ tên không khớp CSDL dân cư",
            submission(
                "2.000794", agency_code="000.00.01.H40", applicant={**APPLICANT, "full_name": "Nguyễn Thị Hồng Nhu"}
            ),
        )
        if payment:
            await paid_online(http, intake, payment, agencies)

        say("\n[demo] who may call what: every call carries a token from the identity provider (Keycloak)\n")
        anonymous = await http.get(f"{intake}/v1/dossiers/{housing['code']}", auth=None)
        say(f"  intake   GET {housing['code']} with no token -> {anonymous.status_code}: {anonymous.json()['title']}")
        other = "000.22.12.H40"  # xã Trường Yên's official, acting for xã Ninh Hải
        forged = await http.post(
            f"{routing}/v1/dossiers/{housing['code']}/accept",
            auth=IDENTITIES.official(other),
            json={"agency_code": COMMUNE},
        )
        say(
            f"  routing  accept {housing['code']} for {COMMUNE} as {other}'s official -> {forged.status_code}: "
            f"{forged.json()['title']}"
        )
        if anonymous.status_code != 401 or forged.status_code != 403:
            raise RuntimeError("the platform let an anonymous or cross-agency call through")

        say("\n[demo] agencies act on the steps they hold\n")
        while True:
            d = await agencies.dossier(housing["code"])
            step = d["steps"][d["current_step"]]
            if not await agencies.step_through_one(housing["code"]):
                break
            say(f"  routing  {housing['code']}  '{step['name']}' done at {step['agency_code']} ({step['level']})")
        [decision] = (await agencies.dossier(housing["code"]))["documents"]
        say(
            f"  documents {decision['number']}: the decision, signed by the official and by {decision['sender_agency']}, "
            f"checked on arrival ({decision['state']}); the approval names it"
        )
        await agencies.act(housing["code"], "return", COMMUNE, method="counter")
        say(f"  routing  {housing['code']}  result returned at the commune counter")

        await agencies.step_through(land["code"])
        say(f"  routing  {land['code']}  appraised and signed by the district; result goes back by post")

        await files_travel(http, intake, routing, housing, land, submit)

        await agencies.act(marriage["code"], "accept", COMMUNE)
        await agencies.act(
            marriage["code"],
            "request-supplement",
            COMMUNE,
            reasons=["Thiếu Giấy xác nhận tình trạng hôn nhân của bên nam"],
        )
        say(f"  routing  {marriage['code']}  supplement requested: the clock stops")
        await eventually(
            lambda: _status(http, intake, marriage["code"], "supplement_requested"),
            what="intake to see the request",
            interval=0.2,
        )
        await http.post(
            f"{intake}/v1/dossiers/{marriage['code']}/supplements", json={"documents": supplement_documents()}
        )
        await eventually(
            lambda: _routing_status(agencies, marriage["code"], "processing"), what="routing to resume", interval=0.2
        )
        say(f"  intake   {marriage['code']}  supplement brought in: the clock runs again")

        await submit("Yêu cầu thiếu giấy tờ", {**submission("1.004227", applicant=citizen(6)), "documents": []})

        view = await eventually(
            lambda: _overdue(http, intake, late["code"]), what="the scheduler to find the late dossier", interval=0.2
        )
        due = datetime.fromisoformat(view["due_at"]).astimezone(timezone(timedelta(hours=7)))
        say(
            f"\n[demo] the scheduler found {late['code']} late: an apology went out with a new date, {due:%H:%M %d/%m/%Y}"
        )

        for code, last in ((housing["code"], "returned"), (late["code"], "apologised")):
            rows = await eventually(
                lambda: _timeline_has(agencies, code, last), what=f"the timeline of {code}", interval=0.2
            )
            say(f"\n[demo] process-control timeline (lgsp timeline {code}):\n")
            say(format_timeline(code, rows))
        await asyncio.sleep(1.0)  # let the services flush their spans
        say(f"\n[demo] the journey of {housing['code']} is one trace ({housing['trace_id']}):\n")
        say(
            render_tree(
                load_trace(trace_dir, housing["trace_id"]),
                keep=lambda s: s["name"].startswith(("POST", "routing ")) or s["name"].endswith(" process"),
            )
        )
        say("  (publish and consume spans hidden; `lgsp trace` shows them all)")
        say(f"\n[demo] again later with:  .venv/bin/lgsp trace {housing['trace_id']}")


async def files_travel(http, intake: str, routing: str, housing: dict, land: dict, submit) -> None:
    """The dossier's files go where it goes: the district official opens what the citizen
    uploaded to the commune (an official off the route cannot), and the land certificate the
    district scanned as its result is reused in the same citizen's next dossier."""
    say("\n[demo] the dossier's files travel with it (file store: S3 API, content-addressed)\n")
    steps = (await Agencies(http, routing).dossier(housing["code"]))["steps"]
    district = next(s["agency_code"] for s in steps if s["level"] == "district")
    official = IDENTITIES.official(district)
    listing = ok(await http.get(f"{routing}/v1/dossiers/{housing['code']}/files", auth=official)).json()
    for f in listing:
        r = ok(await http.get(f"{routing}{f['url']}", auth=official))
        checked = hashlib.sha256(r.content).hexdigest() == f["sha256"]
        say(
            f"  routing  {district}'s official opened '{f['name']}' ({f['role']}, {f['media_type']}, "
            f"{len(r.content)} bytes, SHA-256 {'matches' if checked else 'DOES NOT MATCH'})"
        )
        if not checked:
            raise RuntimeError(f"{f['name']}: the bytes read do not match their hash")
    off_route = await http.get(f"{routing}{listing[0]['url']}", auth=IDENTITIES.official("000.22.12.H40"))
    say(f"  routing  an official of 000.22.12.H40 (off the route) asks for the same file -> {off_route.status_code}")
    if off_route.status_code not in (403, 404):
        raise RuntimeError("an agency off the route read a dossier's file")

    async def result_kept():
        rows = (await http.get(f"{intake}/v1/dossiers/{land['code']}/files")).json()
        return next((f for f in rows if f["role"] == "result"), None)

    result = await eventually(result_kept, what=f"the result of {land['code']} kept with it", interval=0.2)
    say(f"  intake   {land['code']}  result kept for the citizen: '{result['name']}' ({result['size']} bytes)")
    body = submission("1.009994", applicant=citizen(2))
    body["documents"] = [
        *[d for d in body["documents"] if d["component"] != "TP3"],
        {"component": "TP3", "name": "Giấy chứng nhận quyền sử dụng đất (đã số hóa)", "reused_from": land["code"]},
    ]
    permit = await submit("Cấp giấy phép xây dựng: dùng lại GCN đã số hóa, không nộp lại giấy", body)
    reused = [f for f in (await http.get(f"{intake}/v1/dossiers/{permit['code']}/files")).json() if f["reused_from"]]
    say(
        f"  intake   {permit['code']}  component TP3 reuses {reused[0]['reused_from']}'s result (same file, not uploaded again)"
    )


async def _status(http, intake, code, status):
    return (await http.get(f"{intake}/v1/dossiers/{code}")).json()["status"] == status


async def _routing_status(agencies, code, status):
    return (await agencies.dossier(code))["status"] == status


async def _overdue(http, intake, code):
    view = (await http.get(f"{intake}/v1/dossiers/{code}")).json()
    return view if view["overdue"] else None


async def _timeline_has(agencies, code, event):
    rows = await agencies.timeline(code)
    return rows if any(r["event_type"] == f"vn.lgsp.dossier.{event}.v1" for r in rows) else None


CONSOLE_ACCOUNTS = (
    ("manager-province", "the province's indicators"),
    ("operator", "operations, dead letters, traces"),
    ("official-000.21.12.h40", "the commune of Ninh Hải's work lists"),
)


def console_banner(url: str) -> str:
    accounts = "\n".join(f"[demo]     {u:<24} password {local_secret(u):<30} {what}" for u, what in CONSOLE_ACCOUNTS)
    return f"[demo] the console: {url}  (sign in as)\n{accounts}"


def keep_running(url: str) -> None:
    say(f"\n[demo] everything keeps running for you to look around: open {url}")
    say("[demo] press Ctrl-C to stop the services (the stack stays up; `make stack-stop` stops it)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say("\n[demo] stopping the services")


def main(dossiers: int = 300, instances: int = 1, stay: bool | None = None) -> int:
    settings = Settings()
    clock = clock_from_env()
    if start_stack("demo") is None:
        return 1
    logs = settings.state_dir / "logs"
    env = {"LGSP_SCHEDULER_INTERVAL_S": "2", "LGSP_WORKER_INTERVAL_S": "0.3", **UNTHROTTLED}
    running = RunningPlatform(env, logs, instances=instances, with_console=True)
    stay = sys.stdin.isatty() if stay is None else stay
    try:
        running.start(say=lambda m: say(f"[demo] {m}"))
        urls = running.urls
        say(console_banner(urls["console"]))
        httpx.post(f"{urls['carrier']}/control", json={"delay_s": 0.3})
        decisions = Decisions(urls["documents"], Path(running.env["LGSP_DOCUMENTS_PKI_DIR"]), clock.now())
        asyncio.run(
            morning(urls["intake"], urls["routing"], decisions, settings.traces_path, clock, urls.get("payment"))
        )
        say(f"\n[demo] now a whole day: {dossiers} dossiers across channels and levels\n")
        started = time.monotonic()
        tally = asyncio.run(replay_day(urls, dossiers, clock, decisions))
        say(f"[demo] the day took {time.monotonic() - started:.0f} s")
        now = clock.now()
        start, end = period((now.astimezone(LOCAL_TZ) - timedelta(days=30)).date().isoformat(), None, now)
        end = start + timedelta(days=32)
        say("\n[demo] the managers' report (lgsp report --from <30 days ago> --to <tomorrow>):\n")
        report = fetch_report(urls["intake"], start, end, auth=IDENTITIES.driver)
        say(render(report))
        card = scorecard_766(report["total"], report["catalogue"])
        say(f"\n[demo] Decision 766's score card: {sum(g['score'] for g in card):.1f} / 100")
        for g in card:
            say(f"  {g['group']}. {g['name']}: {g['score']} / {g['max']}\n     {g['basis']}")
        say(
            f"  points lost to lateness (groups 2 and 5) name their dossiers: {report['late_total']} dossiers "
            "with the steps that overran, in the report above and on the console's overview"
        )
        sync = httpx.get(f"{urls['intake']}/v1/portal-sync", auth=IDENTITIES.driver).json()
        say(
            f"\n[demo] national portal sync: {sync['sent']} updates sent, {sync['pending']} pending, {sync['rejected']} rejected"
        )
        say("")
        demo_documents.run(urls["documents"], Path(running.env["LGSP_DOCUMENTS_PKI_DIR"]), say, clock.now())
        month_text = now.astimezone(LOCAL_TZ).strftime("%Y-%m")
        say(f"\n[demo] the monthly documents report (lgsp report documents --month {month_text}):\n")
        say(demo_documents.monthly_report(urls["documents"], month_text))
        say(console_banner(urls["console"]))
        if stay:
            keep_running(urls["console"])
        else:
            say("[demo] not in a terminal: stopping the services now (--stay keeps them up)")
        say("[demo] the stack keeps running; stop it with:  make stack-stop\n")
        return 0 if tally.errors == 0 else 1
    except Exception as exc:  # noqa: BLE001 - tell the newcomer where to look
        print(f"[demo] failed: {exc}\n[demo] service logs are in {logs}", file=sys.stderr)
        return 1
    finally:
        running.stop()
