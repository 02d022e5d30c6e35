"""A realistic day for the sample province, replayed against the running platform: a few
hundred dossiers across the three channels and the levels, some needing supplements, some
entered late after an outage (and apologised for), some returned by post, with notifications
flowing, and a progress line while it runs."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from ops.clients import (
    Agencies,
    Decisions,
    documents_for,
    eventually,
    ok,
    pay_fee_if_asked,
    platform_http,
    supplement_documents,
)
from ops.identity import IDENTITIES, MACHINE_CLIENTS
from shared.clock import Clock
from shared.reference.calendar import LOCAL_TZ
from shared.reference.catalogue import catalogue_for

COUNTER_AGENCIES = {c.agency for c in MACHINE_CLIENTS if "counter" in c.roles}

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE = ["Thị", "Văn", "Minh", "Thu", "Quốc", "Ngọc", "Đức", "Thanh", "Hữu"]
GIVEN = [
    "An",
    "Bình",
    "Chi",
    "Dũng",
    "Giang",
    "Hạnh",
    "Khánh",
    "Linh",
    "Mai",
    "Nam",
    "Phương",
    "Quân",
    "Sơn",
    "Thảo",
    "Tuấn",
    "Yến",
]
STREETS = ["phố Lê Lợi", "đường Trần Hưng Đạo", "phố Lương Văn Tụy", "đường Nguyễn Huệ", "thôn Đông", "xóm Chùa"]


@dataclass
class Tally:
    total: int
    submitted: int = 0
    received: int = 0
    refused: int = 0
    pickups: int = 0
    supplements: int = 0
    returned: int = 0
    rated: int = 0
    paid: int = 0
    by_post: int = 0
    late_entries: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def line(self, messages: int, apologies: int) -> str:
        return (
            f"[day] submitted {self.submitted}/{self.total} · received {self.received} · refused {self.refused} · "
            f"pickups {self.pickups} · supplements {self.supplements} · returned {self.returned} "
            f"(by post {self.by_post}) · paid online {self.paid} · rated {self.rated} · late {self.late_entries} · apologies {apologies} · messages {messages}"
            + (f" · errors {self.errors}" if self.errors else "")
        )


def person(rng: random.Random, i: int) -> dict:
    return {
        "full_name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "id_number": f"{rng.randint(1, 96):03d}{rng.randint(0, 3)}{rng.randint(0, 99):02d}{i:06d}",
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "email": f"congdan{i}@example.vn" if rng.random() < 0.4 else None,
        "address": f"Số {rng.randint(1, 200)}, {rng.choice(STREETS)}, tỉnh Ninh Bình (mẫu)",
    }


async def in_population_database(http: httpx.AsyncClient, url: str, rng: random.Random, applicant: dict) -> None:
    """The applicant of a procedure connected to the national population database is a citizen
    it holds (the simulator is told so); about half give their date of birth, the others have it
    filled from the database."""
    born = f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    citizen = {
        "id_number": applicant["id_number"],
        "full_name": applicant["full_name"],
        "date_of_birth": born,
        "permanent_address": applicant["address"],
    }
    ok(await http.post(f"{url}/control/citizens", json=[citizen], auth=None))
    if rng.random() < 0.5:
        applicant["date_of_birth"] = born


async def one_dossier(
    i: int, rng: random.Random, http: httpx.AsyncClient, urls: dict, agencies: Agencies, t: Tally, clock: Clock
) -> None:
    catalogue = catalogue_for("three_level")
    procedure = rng.choice(catalogue.in_force(clock.now().astimezone(LOCAL_TZ).date()))
    receivers = [
        a.code
        for a in catalogue.agencies.values()
        if (a.level, a.unit) == (procedure.receiving_level, procedure.receiving_unit)
    ]
    channel = rng.choices(["online", "counter", "postal"], weights=[40, 45, 15])[0]
    if channel not in procedure.channels:
        channel = procedure.channels[0]
    body = {
        "channel": channel,
        "procedure_code": procedure.code,
        "agency_code": rng.choice(receivers),
        "applicant": person(rng, i),
        "documents": documents_for(procedure.code),
        "result_delivery": "postal" if procedure.postal_result and rng.random() < 0.25 else "counter",
    }
    if procedure.population_check and "population" in urls:
        await in_population_database(http, urls["population"], rng, body["applicant"])
    if rng.random() < 0.03:
        body["documents"] = body["documents"][:-1]  # forgot a component: refused at receipt
    # entered after an outage: only a counter's own software may say so, for its own agency
    counters = [a for a in receivers if a in COUNTER_AGENCIES]
    late = channel == "counter" and bool(counters) and rng.random() < 0.2
    # a portal uploads every file; a counter scans about half its dossiers; the post brings paper
    if channel == "postal" or late or (channel == "counter" and rng.random() < 0.5):
        body["documents"] = [{"component": d["component"], "name": d["name"]} for d in body["documents"]]
    auth = httpx.USE_CLIENT_DEFAULT
    if late:
        body.update(
            agency_code=rng.choice(counters),
            received_at=(clock.now() - timedelta(days=rng.randint(10, 20))).isoformat(),
        )
        auth = IDENTITIES.counter(body["agency_code"])
    t.submitted += 1
    key = None
    if channel == "postal":
        r = await http.post(f"{urls['intake']}/v1/pickups", json=body)
        if r.status_code == 422:
            t.refused += 1
            return
        pickup = r.json()["pickup_id"]
        t.pickups += 1

        async def arrived():
            p = (await http.get(f"{urls['intake']}/v1/pickups/{pickup}")).json()
            return p["dossier_code"] if p["status"] == "received" else None

        code = await eventually(arrived, timeout=60, interval=0.25, what="the post to bring the dossier")
    else:
        r = await http.post(f"{urls['intake']}/v1/dossiers", json=body, auth=auth)
        if r.status_code == 422:
            t.refused += 1
            return
        code = r.json()["code"]
        key = r.json().get("lookup_key")
        if r.json()["status"] == "awaiting_payment":
            await pay_fee_if_asked(http, urls["intake"], urls["payment"], r.json())
            t.paid += 1
    t.received += 1
    t.late_entries += late
    await eventually(lambda: agencies.dossier(code), timeout=60, interval=0.25, what="routing")
    if rng.random() < 0.12:
        holder = await agencies.holder(code)
        ok(await agencies.act(code, "accept", holder))
        ok(await agencies.act(code, "request-supplement", holder, reasons=["Bổ sung bản sao có chứng thực"]))
        t.supplements += 1

        async def asked():
            return (await http.get(f"{urls['intake']}/v1/dossiers/{code}")).json()["status"] == "supplement_requested"

        await eventually(asked, timeout=60, interval=0.25, what="intake to see the supplement request")
        # brought by whoever submitted it: the portal uploads a file, a counter takes paper
        brought = (
            supplement_documents()
            if auth is httpx.USE_CLIENT_DEFAULT
            else [{"component": "TP1", "name": "Bản sao có chứng thực"}]
        )
        ok(await http.post(f"{urls['intake']}/v1/dossiers/{code}/supplements", json={"documents": brought}, auth=auth))

        async def resumed():
            return (await agencies.dossier(code))["status"] == "processing"

        await eventually(resumed, timeout=60, interval=0.25, what="routing to resume")
    if rng.random() < 0.15:
        return  # still being processed at the end of the day
    await agencies.step_through(code)
    if body["result_delivery"] == "postal":

        async def delivered():
            return (await agencies.dossier(code))["status"] == "returned"

        await eventually(delivered, timeout=60, interval=0.25, what="the post to deliver the result")
        t.by_post += 1
    else:
        d = await agencies.dossier(code)
        ok(await agencies.act(code, "return", d["steps"][-1]["agency_code"], method=rng.choice(["counter", "online"])))
    t.returned += 1
    # most citizens rate the handling: online ones with the slip's key (the result's message links
    # to the page), those at a counter on its device
    if rng.random() < 0.7:
        rating = rng.choices(["very_satisfied", "satisfied", "dissatisfied"], weights=[68, 24, 8])[0]
        if key and auth is httpx.USE_CLIENT_DEFAULT:
            url, body_, who = f"{urls['intake']}/v1/lookup/{code}/rating", {"key": key, "rating": rating}, None
        elif auth is not httpx.USE_CLIENT_DEFAULT:
            url, body_, who = f"{urls['intake']}/v1/dossiers/{code}/rating", {"rating": rating}, auth
        else:
            return

        async def rated():
            r = await http.post(url, json=body_, auth=who)
            return r.status_code == 201 or (r.status_code != 409 and ok(r, 201))

        await eventually(rated, timeout=30, interval=0.25, what="intake to take the rating")
        t.rated += 1


async def replay_day(
    urls: dict, n: int, clock: Clock, decisions: Decisions, seed: int = 2026, concurrency: int = 8
) -> Tally:
    rng = random.Random(seed)
    t = Tally(total=n)
    interactive = sys.stdout.isatty()
    async with platform_http(timeout=30, limits=httpx.Limits(max_connections=50)) as http:
        agencies = Agencies(http, urls["routing"], decisions)
        gate = asyncio.Semaphore(concurrency)

        async def guarded(i: int, r: random.Random) -> None:
            async with gate:
                try:
                    await one_dossier(i, r, http, urls, agencies, t, clock)
                except Exception as exc:  # noqa: BLE001 - one stuck dossier must not stop the day
                    t.errors += 1
                    if len(t.error_samples) < 3:
                        t.error_samples.append(f"dossier {i}: {type(exc).__name__} {exc}")

        async def progress(final: bool = False) -> None:
            msgs = (await http.get(f"{urls['messaging']}/control/messages")).json()["delivered"]
            apologies = sum(1 for m in msgs if "xin lỗi" in m["text"])
            line = t.line(len(msgs), apologies)
            print(("\r" + line) if interactive else line, end="\n" if final or not interactive else "", flush=True)

        tasks = [asyncio.create_task(guarded(i, random.Random(rng.random()))) for i in range(n)]
        last = 0.0
        while not all(task.done() for task in tasks):
            await asyncio.sleep(0.5)
            if interactive or time.monotonic() - last > 10:
                await progress()
                last = time.monotonic()
        await asyncio.sleep(3)  # let the last notifications and apologies go out
        await progress(final=True)
    for sample in t.error_samples:
        print(f"[day] problem: {sample}", file=sys.stderr)
    return t
