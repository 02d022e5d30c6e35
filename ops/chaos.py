"""``make chaos``: faults under load, then a reconciliation from the databases and topics.

While dossiers stream in through intake's HTTP API (online ones synced to the national
portal, some entered late so they are apologised for, some picked up by the post), every
service is SIGKILLed in turn and restarted, the Kafka broker is SIGKILLed and restarted (on a
three-broker cluster: one broker, then the one leading the dossier topic's first partition), and
PostgreSQL is restarted; poison records (bad JSON, an unknown schema version, missing
headers, a huge payload) are injected straight into the dossier topic. Official documents
signed twice go between agencies through the same faults (the documents service is SIGKILLed
too). A tenth of the dossiers carry a fee paid online by an applicant checked against the
population database, while that database is down for a while, the payment platform drops its
callbacks for a while and is down for a while. At the end:
- every submitted dossier was received by intake and taken in by routing;
- no dossier reached routing unpaid, none got two payment orders or was charged twice, every
  receipt was kept, every applicant received while the database was down was confirmed;
- no receipt message, carrier booking, apology or portal update happened twice;
- every document sent arrived at each recipient, with one "arrived" status and one event each;
- the dead-letter topics hold exactly the poison, each with its reason (none for documents).
The same engine runs smaller inside ``make test`` (tests/test_chaos_small.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ops import stack
from ops.clients import documents_for, platform_http
from ops.identity import IDENTITIES
from ops.pki import TestPki
from ops.processes import ServiceProcess
from ops.signing import document_pdf, sign_twice
from shared.clock import clock_from_env
from shared.files import BlobCorrupt, BlobMissing, open_store
from shared.reference.catalogue import catalogue_for
from shared.settings import Settings
from shared.topic_reader import all_records
from shared.topics import ALL_SERVICES, SERVICES, dead_letter

COMMUNE = "000.21.12.H40"  # the commune whose counter software enters the late dossiers
CENTRE = "000.00.01.H40"  # the province's public-service centre: business registrations
FEE_PROCEDURE = (
    "1.001612"  # business registration: a fee paid online, the applicant checked against the population database
)
KINDS = {"online": 70, "paid": 10, "late": 10, "pickup": 10}  # share of each kind of submission
RECEIVERS = tuple(
    a.code for a in catalogue_for("three_level").agencies.values() if (a.level, a.unit) == ("commune", "ubnd")
)  # every commune's people's committee
DOCUMENT_ROUTES = (
    ("000.21.12.H40", "000.00.12.H40"),
    ("000.00.12.H40", "000.00.00.H40"),
    ("000.00.00.H40", "000.21.12.H40"),
)


def say(msg: str) -> None:
    print(f"[chaos] {msg}", flush=True)


def poison_records() -> list[tuple[str, bytes | None, list[tuple[str, bytes]]]]:
    """(label, value, headers) of records no service can take."""

    def headers(ce_type: str) -> list[tuple[str, bytes]]:
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_type", ce_type.encode()),
            ("ce_source", b"/chaos"),
            ("content-type", b"application/json"),
        ]

    huge = json.dumps({"dossier_id": "x", "padding": "Đ" * 400_000}, ensure_ascii=False).encode()
    return [
        ("bad JSON", b'{"dossier_id": ', headers("vn.lgsp.dossier.received.v1")),
        ("unknown schema version", b"{}", headers("vn.lgsp.dossier.received.v9")),
        ("missing headers", b"{}", [("content-type", b"application/json")]),
        ("huge payload", huge, headers("vn.lgsp.dossier.received.v1")),
    ]


FILE_BYTES = 8 * 1024  # each uploaded component file (a small scan: the run is about faults, not bytes)


class Driver:
    """Submits dossiers with idempotency keys through outages, and cannot livelock:
    - at most ``in_flight`` submissions are outstanding: the offered rate is what is accepted,
      and a submission that could not start within a second of its time is counted late;
    - each intake instance has a client (pool) of its own, so a dead instance's connections
      never hold up a live one's; an instance that refused a connection is passed over for a
      second, and a retry goes to the next instance;
    - every wait is bounded (connect 3 s, answer 10 s, backoff 2 s at most), and a submission
      not accepted within ``give_up_s`` is given up and counted as failed, with its last error.
    Nothing is lost on our side: every retry carries the same Idempotency-Key."""

    def __init__(
        self, urls: dict[str, str], run_id: str, rng: random.Random, in_flight: int = 64, give_up_s: float = 300.0
    ) -> None:
        self.urls, self.run_id, self.rng = urls, run_id, rng
        self.entries = [url for name, url in sorted(urls.items()) if name == "intake" or name.startswith("intake-")]
        self.clock = clock_from_env()
        self.in_flight, self.give_up_s = in_flight, give_up_s
        self.keys: dict[str, str] = {}  # idempotency key -> kind (online, paid, late, pickup)
        self.kinds: list[str] = []  # the kind of each submission, drawn before the run (plan)
        self.failures = 0
        self.paying: list[asyncio.Task] = []  # each accepted fee's payment by its citizen
        self.paid = self.pay_failures = 0
        self.uploads = 0
        self.offered = self.accepted = self.outstanding = self.late = 0
        self.accepted_spans: list[tuple[float, float]] = []  # (sent, accepted) of each accepted submission
        self.last_errors: dict[str, str] = {}  # entry -> what it last answered
        self._slots = asyncio.Semaphore(in_flight)
        self._down_until: dict[str, float] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def __aenter__(self) -> "Driver":
        per_entry = max(4, self.in_flight // max(1, len(self.entries)) + 4)
        for entry in self.entries:
            self._clients[entry] = httpx.AsyncClient(
                auth=IDENTITIES.driver,
                timeout=httpx.Timeout(10.0, connect=3.0),
                limits=httpx.Limits(max_connections=per_entry, max_keepalive_connections=per_entry),
            )
        return self

    async def __aexit__(self, *exc) -> None:
        for client in self._clients.values():
            await client.aclose()

    def plan(self, n: int) -> list[dict]:
        """Draws the kind of each of ``n`` submissions; returns the citizens the population
        database must know: the applicants of the dossiers that are checked against it."""
        self.kinds = self.rng.choices(list(KINDS), weights=list(KINDS.values()), k=n)
        return [citizen(i) for i, kind in enumerate(self.kinds) if kind == "paid"]

    def body(self, kind: str, i: int) -> dict:
        # spread over every commune that registers births: an agency numbers at most 9999
        # dossiers a day, and a province's day at scale is more than one commune's
        agency = COMMUNE if kind == "late" else RECEIVERS[i % len(RECEIVERS)]
        procedure = "1.001193"
        if kind == "paid":
            agency, procedure = CENTRE, FEE_PROCEDURE
        b = {
            "channel": "online",
            "procedure_code": procedure,
            "agency_code": agency,
            "applicant": {
                "full_name": APPLICANT_NAME,
                "id_number": id_number(i),
                "phone": f"09{10_000_000 + i:08d}",
                "address": "Thôn Đông, xã Ninh Hải, huyện Hoa Lư, Ninh Bình",
            },
            # the portal uploaded its files; a counter's entry and a pickup bring paper
            "documents": documents_for(procedure, on_paper=kind in ("late", "pickup")),
            "notify_via": ["sms"],
        }
        if kind == "late":
            b.update(channel="counter", received_at=(self.clock.now() - timedelta(days=10)).isoformat())
        elif kind == "pickup":
            b.update(channel="postal")
        return b

    async def start(self, i: int, due: float) -> asyncio.Task:
        """Waits for a free slot (backpressure), then starts submission ``i``, due at ``due``."""
        await self._slots.acquire()
        self.offered += 1
        self.outstanding += 1
        if time.perf_counter() - due > 1.0:
            self.late += 1
        return asyncio.create_task(self._submit(i))

    def _entry(self, i: int, attempt: int) -> str:
        """The next instance in turn that has not just refused a connection (any, if all have)."""
        now = time.monotonic()
        turn = [self.entries[(i + attempt + k) % len(self.entries)] for k in range(len(self.entries))]
        return next((e for e in turn if self._down_until.get(e, 0) <= now), turn[0])

    async def _submit(self, i: int) -> None:
        try:
            await self._try(i)
        finally:
            self.outstanding -= 1
            self._slots.release()

    async def _try(self, i: int) -> None:
        kind = self.kinds[i] if i < len(self.kinds) else "online"
        key = f"chaos-{self.run_id}-{i}"
        path = "/v1/pickups" if kind == "pickup" else "/v1/dossiers"
        body = self.body(kind, i)
        # a late entry is the counter's own software's to record (only it may backdate)
        auth = IDENTITIES.counter(COMMUNE) if kind == "late" else httpx.USE_CLIENT_DEFAULT
        give_up = time.monotonic() + self.give_up_s
        attempt = 0
        uploaded: list[dict] = []  # an online dossier's files, each its own, uploaded before it is named
        while time.monotonic() < give_up:
            entry = self._entry(i, attempt)
            sent = time.perf_counter()
            try:
                if kind in ("online", "paid"):
                    while len(uploaded) < len(body["documents"]):
                        uploaded.append(await self._upload(entry, i, body["documents"][len(uploaded)]))
                    body["documents"] = uploaded
                r = await self._clients[entry].post(
                    f"{entry}{path}", json=body, headers={"Idempotency-Key": key}, auth=auth
                )
                if r.status_code in (200, 201, 202):
                    self.keys[key] = kind
                    self.accepted += 1
                    self.accepted_spans.append((sent, time.perf_counter()))
                    if kind == "paid":  # the citizen pays later, without holding a submission's slot
                        self.paying.append(asyncio.create_task(self._pay(r.json()["code"], i)))
                    return
                self.last_errors[entry] = f"{r.status_code} {r.text[:120]}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    break  # refused: a bug in the driver, counted below
            except httpx.ConnectError as exc:
                self._down_until[entry] = time.monotonic() + 1.0
                self.last_errors[entry] = f"cannot connect ({type(exc).__name__})"
            except httpx.HTTPError as exc:
                self.last_errors[entry] = type(exc).__name__
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0) * (0.5 + self.rng.random()))
            attempt += 1
        self.failures += 1

    async def _pay(self, code: str, i: int) -> None:
        """The citizen pays the fee once intake has its payment order: the order is read
        from intake (any instance) and paid on the payment platform's page (its simulator).
        Paying twice would be the platform's fault to catch: it is done once here."""
        give_up = time.monotonic() + self.give_up_s
        attempt = 0
        while time.monotonic() < give_up:
            entry = self._entry(i, attempt)
            try:
                r = await self._clients[entry].get(f"{entry}/v1/dossiers/{code}")
                if r.status_code == 200 and (pay_url := r.json().get("pay_url")):
                    paid = await self._clients[entry].post(
                        f"{self.urls['payment']}/control/pay/{pay_url.rsplit('/', 1)[1]}", auth=None
                    )
                    if paid.status_code == 200:
                        self.paid += 1
                        return
            except httpx.ConnectError:
                self._down_until[entry] = time.monotonic() + 1.0
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(0.25 * 2**attempt, 2.0))
            attempt += 1
        self.pay_failures += 1

    async def _upload(self, entry: str, i: int, document: dict) -> dict:
        """A scan of the component with bytes of its own (a few KB), as a portal uploads it."""
        scan = b"%PDF-1.7\n" + f"{self.run_id}-{i}-{document['component']}".encode() + self.rng.randbytes(FILE_BYTES)
        r = await self._clients[entry].post(
            f"{entry}/v1/files", content=scan, headers={"content-type": "application/pdf"}
        )
        if r.status_code != 201:
            raise httpx.HTTPStatusError(f"upload answered {r.status_code}", request=r.request, response=r)
        self.uploads += 1
        return {"component": document["component"], "name": document["name"], "sha256": r.json()["sha256"]}

    def progress(self, n: int) -> str:
        return (
            f"offered {self.offered}/{n} · accepted {self.accepted} · outstanding {self.outstanding} · "
            f"late {self.late} · failed {self.failures} · fees paid {self.paid}/{len(self.paying)}"
        )

    def recovery_after(self, struck_at: float, over_at: float | None = None) -> float | None:
        """The longest time without an acceptance from the moment a fault struck until a little
        after its action ended (the struck part back): how long accepted submissions stopped.
        None when nothing was accepted after it."""
        end = (over_at if over_at is not None else struck_at) + 5.0
        times = sorted(accepted for _, accepted in self.accepted_spans if accepted >= struck_at)
        if not times:
            return None
        marks = [struck_at, *(t for t in times if t <= end), min(times[-1], max(end, times[0]))]
        return max(b - a for a, b in zip(marks, marks[1:]))


APPLICANT_NAME = "Đoàn Thị Thanh Hương"


def id_number(i: int) -> str:
    return f"03719{i:07d}"


def citizen(i: int) -> dict:
    """Submission ``i``'s applicant as the population database knows them."""
    return {
        "id_number": id_number(i),
        "full_name": APPLICANT_NAME,
        "date_of_birth": "1991-09-02",
        "permanent_address": "Thôn Đông, xã Ninh Hải, huyện Hoa Lư, tỉnh Ninh Bình",
    }


async def watch(driver: Driver, n: int, stop: asyncio.Event, every_s: float = 10.0, stall_s: float = 60.0) -> None:
    """Prints progress; says so, and why, when nothing was accepted for ``stall_s`` seconds."""
    seen, since = driver.accepted, time.monotonic()
    while not stop.is_set():
        try:
            async with asyncio.timeout(every_s):
                await stop.wait()
        except TimeoutError:
            pass
        say(driver.progress(n))
        if driver.accepted != seen:
            seen, since = driver.accepted, time.monotonic()
        elif driver.outstanding and time.monotonic() - since >= stall_s:
            errors = "; ".join(f"{e}: {why}" for e, why in driver.last_errors.items()) or "none answered"
            say(
                f"NO PROGRESS for {time.monotonic() - since:.0f} s: {driver.outstanding} outstanding; last answers: {errors}"
            )


class DocumentsDriver:
    """Sends official documents signed twice (signed before the run: signing is not under
    test), retrying through outages. A retry of a document already registered gets 409 for
    its number and date, which counts as sent: nothing is lost or sent twice on our side."""

    def __init__(self, url: str, pki_dir, run_id: str) -> None:
        self.url, self.pki, self.run_id = url, TestPki(pki_dir), run_id
        self.prepared: list[tuple[str, str, str, bytes]] = []  # sender, recipient, number, pdf
        self.sent: dict[str, tuple[str, str]] = {}  # number -> (sender, recipient)
        self.failures = 0
        self.today = clock_from_env().now().date().isoformat()

    async def prepare(self, count: int) -> None:
        for k in range(count):
            sender, recipient = DOCUMENT_ROUTES[k % len(DOCUMENT_ROUTES)]
            number = f"{k + 1}-{self.run_id}/CHAOS"
            pdf = await sign_twice(
                document_pdf(number, "Văn bản gửi trong lúc có sự cố", ["chaos"]),
                self.pki.credential(f"official-{sender}"),
                self.pki.credential(f"agency-{sender}"),
            )
            self.prepared.append((sender, recipient, number, pdf))

    async def send(self, k: int) -> None:
        sender, recipient, number, pdf = self.prepared[k]
        async with httpx.AsyncClient(timeout=20, auth=IDENTITIES.official(sender)) as http:
            for attempt in range(200):
                try:
                    up = await http.post(
                        f"{self.url}/v1/documents/files", content=pdf, headers={"content-type": "application/pdf"}
                    )
                    if up.status_code == 201:
                        r = await http.post(
                            f"{self.url}/v1/documents",
                            json={
                                "agency_code": sender,
                                "number": number,
                                "issued_on": self.today,
                                "summary": "V/v thử nghiệm khả năng chịu lỗi",
                                "doc_type": "Công văn",
                                "recipients": [recipient],
                                "file_sha256": up.json()["sha256"],
                            },
                        )
                        if r.status_code == 201 or (r.status_code == 409 and "already sent" in r.text):
                            self.sent[number] = (sender, recipient)
                            return
                        if 400 <= r.status_code < 500:
                            break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        self.failures += 1


async def leader_of(cfg: stack.StackConfig, topic: str, partition: int) -> int:
    """The node leading ``topic``'s ``partition`` now (asked again while a broker that just
    came back is not ready to answer)."""
    for attempt in range(30):
        admin = AIOKafkaAdminClient(**cfg.operator().options())
        try:
            await admin.start()
            [described] = await admin.describe_topics([topic])
            return next(p["leader"] for p in described["partitions"] if p["partition"] == partition)
        except KafkaError:
            await asyncio.sleep(1.0)
        finally:
            await admin.close()
    raise RuntimeError(f"no broker told who leads {topic}:{partition}")


def faults(
    procs: dict[str, ServiceProcess], cfg: stack.StackConfig, topic: str, outage_s: float | None = None
) -> list[tuple[float, str, callable]]:
    """(fraction of the submissions, label, action) in the order they strike. With several
    instances per service, the second instance of each is the one killed: the others go on.
    A third party's outage begins at one fraction and ends at another, lasting while the faults
    between strike; with ``outage_s`` (the soak, whose faults are minutes apart) each outage is
    one fault of that many seconds instead."""

    def kill_and_restart(name: str):
        def act():
            procs[name].kill()
            time.sleep(1.0)
            procs[name].start(wait=120)

        return act

    def broker():
        stack.stop_kafka(cfg, kill=True)
        time.sleep(1.0)
        stack.start_kafka(cfg)

    def cluster_node(which: str):
        """On a cluster: SIGKILL one broker (node 2, or the one leading the dossier topic's
        first partition when it strikes) and start it again; the other two carry on."""

        def act():
            node = 2 if which == "node 2" else asyncio.run(leader_of(cfg, topic, 0))
            say(f"  the broker struck is node {node}")
            stack.stop_kafka_node(cfg, node, kill=True)
            time.sleep(3.0)  # long enough for the cluster to elect new leaders without it
            stack.start_kafka_node(cfg, node)

        return act

    def pause(node: int, seconds: float):
        """A network pause, as a partition would: the broker stops answering (SIGSTOP) with
        its connections open, then resumes (SIGCONT)."""

        def act():
            pid = stack.kafka_pid(cfg, node)
            if pid is None:
                raise RuntimeError(f"no running Kafka node {node} to pause")
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                os.kill(pid, signal.SIGCONT)

        return act

    def database():
        stack.stop_postgres(cfg)
        time.sleep(1.0)
        stack.start_postgres(cfg)

    def file_store():
        """The S3 server killed with uploads on their way, back 2 s later."""
        stack.stop_s3(cfg, kill=True)
        time.sleep(2.0)
        stack.start_s3(cfg)

    def third_party(name: str, **state):
        """A third party's outage begins or ends (its simulator's /control): it lasts while
        the faults between strike, so it costs the run no time of its own."""

        def act():
            httpx.post(f"{procs[name].url}/control", json=state, timeout=10).raise_for_status()

        return act

    def for_a_while(begin, end, seconds: float):
        def act():
            begin()
            try:
                time.sleep(seconds)
            finally:
                end()

        return act

    names = ("intake", "routing", "postal", "notify", "documents")
    victims = [f"{name}-2" if f"{name}-2" in procs else name for name in names if name in procs]
    plan = [
        (at, f"SIGKILL {victim}", kill_and_restart(victim))
        for at, victim in zip((0.12, 0.25, 0.38, 0.5, 0.56), victims)
    ]
    if cfg.kafka_brokers == 1:
        plan.append((0.45, "pause the Kafka broker for 5 s (SIGSTOP, SIGCONT)", pause(1, 5.0)))
        plan.append((0.62, "SIGKILL the Kafka broker", broker))
    else:
        plan.append((0.45, "pause Kafka broker node 3 for 15 s (SIGSTOP, SIGCONT)", pause(3, 15.0)))
        plan.append((0.62, "SIGKILL Kafka broker node 2", cluster_node("node 2")))
        plan.append((0.68, "SIGKILL the Kafka broker leading the dossier topic's partition 0", cluster_node("leader")))
    plan.append((0.31, "SIGKILL the S3 server (file store)", file_store))
    outages = [  # (begins, ends, party, what, its state in the outage, the labels of its two ends)
        (0.08, 0.40, "population", "down", ("the population database down", "the population database back")),
        (
            0.20,
            0.52,
            "payment",
            "drop_callbacks",
            ("the payment platform drops its callbacks", "the payment platform sends its callbacks again"),
        ),
        (0.58, 0.66, "payment", "down", ("the payment platform down", "the payment platform back")),
    ]
    for begins, ends, party, what, (down_label, back_label) in outages:
        down, back = third_party(party, **{what: True}), third_party(party, **{what: False})
        if outage_s is None:
            plan += [(begins, down_label, down), (ends, back_label, back)]
        else:
            plan.append((begins, f"{down_label} for {outage_s:.0f} s", for_a_while(down, back, outage_s)))
    plan.sort(key=lambda fault: fault[0])
    if not cfg.external_database_url:
        plan.append((0.75, "restart PostgreSQL", database))
    return plan


async def plan_kinds(driver: Driver, urls: dict[str, str], n: int) -> None:
    """Draws the kind of each submission and tells the population database of the applicants
    checked against it (the citizens exist before they file)."""
    citizens = driver.plan(n)
    async with httpx.AsyncClient(timeout=30) as sim:
        (await sim.post(f"{urls['population']}/control/citizens", json=citizens)).raise_for_status()
    say(f"{len(citizens)} of the {n} dossiers pay a fee online, their applicants known to the population database")


async def restore_third_parties(urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as sim:
        await sim.post(f"{urls['population']}/control", json={"down": False})
        await sim.post(f"{urls['payment']}/control", json={"down": False, "drop_callbacks": False})


async def dead_letters_of(cfg: stack.StackConfig, settings: Settings, service: str) -> list:
    """The records ``service`` of this namespace dead-lettered, oldest first."""
    letters = await all_records(cfg.operator(), settings.topic(dead_letter(service).name))
    return [
        r for r in letters if dict(r.headers).get("dlq_consumer", b"").decode() == f"{settings.schema_prefix}{service}"
    ]


async def run(
    procs: dict[str, ServiceProcess],
    cfg: stack.StackConfig,
    settings: Settings,
    n: int,
    rate: float,
    timeout: float = 600,
    in_flight: int = 64,
) -> dict:
    urls = {name: p.url for name, p in procs.items()}
    driver = Driver(urls, uuid.uuid4().hex[:6], random.Random(7), in_flight=in_flight)
    topic = settings.topic("dossier")

    # what was dead-lettered before this run (a namespace with a history): only what follows counts
    earlier = {s: len(await dead_letters_of(cfg, settings, s)) for s in ALL_SERVICES}
    producer = AIOKafkaProducer(**cfg.operator().options(), max_request_size=2 << 20)
    await producer.start()
    poisons = poison_records()
    for _, value, headers in poisons:
        await producer.send_and_wait(topic, value=value, key=b"chaos-poison", headers=headers)
    await producer.stop()
    say(f"injected {len(poisons)} poison records into {topic}")

    await plan_kinds(driver, urls, n)

    documents = DocumentsDriver(urls["documents"], procs["documents"].env["LGSP_DOCUMENTS_PKI_DIR"], driver.run_id)
    every = 50  # one document for this many dossiers (at least 6)
    await documents.prepare(max(6, n // every))
    doc_every = max(1, n // len(documents.prepared))
    plan = faults(procs, cfg, topic)
    struck: list[str] = []
    struck_at: list[tuple[str, float, float]] = []  # label, struck, action over

    async def strike(at: float, label: str, act) -> None:
        """Each fault in its turn, once that share of the dossiers was offered; submissions go
        on while it strikes and while the struck part comes back."""
        while driver.offered < at * n:
            await asyncio.sleep(0.2)
        say(f"{label} (after {driver.offered} submissions; {driver.progress(n)})")
        began = time.perf_counter()
        await asyncio.to_thread(act)
        struck_at.append((label, began, time.perf_counter()))
        struck.append(label)

    async def faults_in_turn() -> None:
        for at, label, act in plan:
            await strike(at, label, act)

    phases: dict[str, float] = {}
    async with platform_http(timeout=20, limits=httpx.Limits(max_connections=20)) as http, driver:
        tasks, t0 = [], time.perf_counter()
        stop_watching = asyncio.Event()
        watcher = asyncio.create_task(watch(driver, n, stop_watching))
        faulting = asyncio.create_task(faults_in_turn())
        for i in range(n):
            due = t0 + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(await driver.start(i, due))
            if i % doc_every == 0 and i // doc_every < len(documents.prepared):
                tasks.append(asyncio.create_task(documents.send(i // doc_every)))
        await asyncio.gather(*tasks)
        try:
            await faulting
        finally:
            await restore_third_parties(urls)  # whatever happened, no outage outlives the run
        await asyncio.gather(*driver.paying)
        stop_watching.set()
        await watcher
        phases["submit_s"] = round(time.perf_counter() - t0, 1)
        say(
            f"all {n} offered: {driver.progress(n)}; {len(documents.sent)} documents sent "
            f"({documents.failures} failed) in {phases['submit_s']:.0f} s; reconciling…"
        )
        t1 = time.perf_counter()
        result = await reconcile(http, urls, cfg, settings, driver, len(poisons), timeout, documents, earlier)
        phases["reconcile_s"] = round(time.perf_counter() - t1, 1)
    result["phases"] = phases
    result["recovery_s"] = {
        label: None if (r := driver.recovery_after(at, over)) is None else round(r, 2) for label, at, over in struck_at
    }
    result["driver"] = {
        "offered": driver.offered,
        "accepted": driver.accepted,
        "late": driver.late,
        "failed": driver.failures,
        "fees_paid": driver.paid,
        "fees_not_paid": driver.pay_failures,
        "in_flight_max": driver.in_flight,
    }
    for label, seconds in result["recovery_s"].items():
        say(
            f"after {label}: "
            + (
                "no submission accepted after it"
                if seconds is None
                else f"acceptances stopped for {seconds:.2f} s at most"
            )
        )
    result["faults"] = struck
    return result


async def reconcile(
    http,
    urls,
    cfg,
    settings: Settings,
    driver: Driver,
    poison_count: int,
    timeout: float,
    documents: DocumentsDriver | None = None,
    earlier: dict[str, int] | None = None,
) -> dict:
    prefix = settings.schema_prefix
    deadline = time.monotonic() + timeout
    keys = list(driver.keys)
    late_keys = [k for k, kind in driver.keys.items() if kind == "late"]
    online_keys = [k for k, kind in driver.keys.items() if kind == "online"]
    paid_keys = [k for k, kind in driver.keys.items() if kind == "paid"]
    while True:
        counts, problems = await check(
            http, urls, cfg, settings, prefix, keys, late_keys, online_keys, paid_keys, poison_count, earlier or {}
        )
        pay_counts, pay_problems = await check_payments(http, urls, cfg, prefix, paid_keys)
        counts.update(pay_counts)
        problems += pay_problems
        if documents is not None:
            doc_counts, doc_problems = await check_documents(
                cfg, settings, documents, (earlier or {}).get("documents", 0)
            )
            counts.update(doc_counts)
            problems += doc_problems
        if not problems or time.monotonic() > deadline:
            break
        say("waiting: " + "; ".join(problems[:3]))
        await asyncio.sleep(3)
    file_counts, file_problems = await check_files(cfg, settings, online_keys + paid_keys)
    counts.update(file_counts)
    problems += file_problems
    counts["submit_failures"] = driver.failures
    if driver.failures:
        problems.append(f"{driver.failures} submissions never accepted")
    if driver.pay_failures:
        problems.append(f"{driver.pay_failures} fees never paid by their citizen (no payment order came)")
    if documents is not None and documents.failures:
        problems.append(f"{documents.failures} documents never accepted")
    return {"counts": counts, "problems": problems}


async def check_files(cfg: stack.StackConfig, settings: Settings, online_keys: list[str]) -> tuple[dict, list[str]]:
    """Every file an online dossier names is in the store, whole: read back through the store's
    own client and hashed. An online dossier names two files of its own."""
    prefix = settings.schema_prefix
    conn = await asyncpg.connect(cfg.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT f.sha256 FROM {prefix}intake.dossier_files f JOIN {prefix}intake.dossiers d ON d.id = f.dossier_id "
            "WHERE f.store = 'dossiers' AND f.role = 'component' AND substr(d.idempotency_key, "
            "strpos(d.idempotency_key, '/') + 1) = ANY($1)",
            online_keys,
        )
    finally:
        await conn.close()
    env = cfg.files_env()
    store = open_store(env["LGSP_FILES_URL"], f"{prefix}dossiers", env["LGSP_S3_ACCESS_KEY"], env["LGSP_S3_SECRET_KEY"])
    missing = corrupt = 0
    try:
        for r in rows:
            try:
                await store.read_all(r["sha256"])
            except BlobMissing:
                missing += 1
            except BlobCorrupt:
                corrupt += 1
    finally:
        await store.close()
    counts = {"files_bound": len(rows), "files_missing": missing, "files_corrupt": corrupt}
    problems = []
    if len(rows) != 2 * len(online_keys):
        problems.append(f"{len(rows)} files bound to {len(online_keys)} online dossiers, want two each")
    if missing or corrupt:
        problems.append(f"{missing} files named by a dossier are missing and {corrupt} do not match their hash")
    return counts, problems


async def check(
    http, urls, cfg, settings, prefix, keys, late_keys, online_keys, paid_keys, poison_count, earlier: dict[str, int]
) -> tuple[dict, list[str]]:
    pickup_keys = [k for k in keys if k not in {*late_keys, *online_keys, *paid_keys}]
    problems: list[str] = []
    conn = await asyncpg.connect(cfg.database_url)
    try:
        shipment_refs = await conn.fetch(f"SELECT dossier_id, id FROM {prefix}postal.shipments WHERE kind = 'pickup'")
        # intake keeps each key under the client that sent it: "<client>/<key>"
        intake = await conn.fetch(
            f"SELECT d.id, d.code, substr(k.key, strpos(k.key, '/') + 1) AS key "
            f"FROM {prefix}intake.dossiers d LEFT JOIN {prefix}intake.pickups p ON p.dossier_id = d.id, "
            "LATERAL (SELECT coalesce(d.idempotency_key, p.idempotency_key) AS key) k "
            "WHERE substr(k.key, strpos(k.key, '/') + 1) = ANY($1)",
            keys,
        )
        ids = [r["id"] for r in intake]
        routed = await conn.fetchval(f"SELECT count(*) FROM {prefix}routing.dossiers WHERE dossier_id = ANY($1)", ids)
        sent = await conn.fetch(
            f"SELECT dossier_id, count(*) AS n FROM {prefix}notify.notifications WHERE dossier_id = ANY($1) "
            "AND event_type = 'vn.lgsp.dossier.received.v1' AND status = 'sent' GROUP BY dossier_id",
            ids,
        )
        late_ids = [r["id"] for r in intake if r["key"] in set(late_keys)]
        online_codes = [r["code"] for r in intake if r["key"] in set(online_keys)]
        paid_codes = {r["code"] for r in intake if r["key"] in set(paid_keys)}
    finally:
        await conn.close()
    code_of = {r["id"]: r["code"] for r in intake}
    counts = {"submitted": len(keys), "received": len(intake), "routed": routed, "receipt_messages_planned": len(sent)}
    if len(intake) != len(keys):
        problems.append(f"intake has {len(intake)} of {len(keys)} dossiers")
    if routed != len(intake):
        problems.append(f"routing has {routed} of {len(intake)} dossiers")

    delivered = (await http.get(f"{urls['messaging']}/control/messages")).json()["delivered"]
    receipts = Counter(
        m["text"].split("Hồ sơ ")[1].split(" ")[0]
        for m in delivered
        if "đã được tiếp nhận" in m["text"] and "Hồ sơ " in m["text"]
    )
    wanted = set(code_of.values())
    counts["receipt_messages_delivered"] = sum(1 for c in wanted if receipts[c] >= 1)
    doubled = [c for c in wanted if receipts[c] > 1]
    counts["receipt_messages_doubled"] = len(doubled)
    if counts["receipt_messages_delivered"] != len(wanted):
        problems.append(f"{len(wanted) - counts['receipt_messages_delivered']} dossiers without a receipt message")
    if doubled:
        problems.append(f"{len(doubled)} receipt messages went out twice")

    bookings = (await http.get(f"{urls['carrier']}/control/bookings")).json()["by_reference"]
    shipment_of = {r["dossier_id"]: str(r["id"]) for r in shipment_refs}
    pickup_ids = {shipment_of.get(r["id"], "") for r in intake if r["key"] in set(pickup_keys)}
    counts["pickups"] = len(pickup_keys)
    counts["carrier_shipments"] = sum(bookings.get(i, 0) for i in pickup_ids)
    if any(bookings.get(i, 0) > 1 for i in pickup_ids):
        problems.append("a pickup was booked with the carrier twice")

    records = await all_records(cfg.operator(), settings.topic("dossier"))
    apologies = Counter(
        dict(r.headers).get("ce_subject", b"").decode()
        for r in records
        if dict(r.headers).get("ce_type") == b"vn.lgsp.dossier.apologised.v1"
    )
    late = {str(i) for i in late_ids}
    counts["late_dossiers"] = len(late)
    counts["apologies"] = sum(apologies[i] for i in late)
    if any(apologies[i] != 1 for i in late):
        problems.append(
            f"apologies per late dossier: {sorted(Counter(apologies[i] for i in late).items())} (want 1 each)"
        )

    updates = (await http.get(f"{urls['portal']}/control/updates")).json()
    synced = [updates.get(c, []) for c in online_codes]
    counts["portal_dossiers_synced"] = sum(1 for u in synced if [x["TrangThaiHoSo"] for x in u][:2] == [2, 4])
    counts["portal_updates"] = sum(len(u) for u in synced)
    repeated = sum(
        1 for u in synced + [updates.get(c, []) for c in paid_codes] if len({x["TrangThaiHoSo"] for x in u}) != len(u)
    )
    if counts["portal_dossiers_synced"] != len(online_codes):
        problems.append(f"portal has {counts['portal_dossiers_synced']} of {len(online_codes)} online dossiers")
    if repeated:
        problems.append(f"{repeated} dossiers got a portal status twice")

    # every channel is synced: each dossier's first update is its receipt, or the fee it awaits
    # (6, financial obligation) and then its receipt, told it was paid online
    def synced_from_the_start(code: str) -> bool:
        u = updates.get(code, [])
        if code not in paid_codes:
            return bool(u) and u[0]["TrangThaiHoSo"] == 2
        statuses = [x["TrangThaiHoSo"] for x in u]
        return statuses[:2] == [6, 2] and u[1].get("DuocThanhToanTrucTuyen") == 2

    counts["portal_dossiers_synced_every_channel"] = sum(1 for c in code_of.values() if synced_from_the_start(c))
    if counts["portal_dossiers_synced_every_channel"] != len(intake):
        problems.append(f"portal has {counts['portal_dossiers_synced_every_channel']} of {len(intake)} dossiers")

    dlq = {}
    for service in SERVICES:
        mine = (await dead_letters_of(cfg, settings, service))[earlier.get(service, 0) :]
        dlq[service] = Counter(
            dict(r.headers)["dlq_reason"].decode().split(":")[0]
            + ": "
            + dict(r.headers)["dlq_reason"].decode().split(":")[1].strip()[:40]
            for r in mine
        )
        if len(mine) != poison_count:
            problems.append(f"{service} dead-lettered {len(mine)} records, want exactly the {poison_count} poison")
    counts["dead_letters"] = {s: sum(c.values()) for s, c in dlq.items()}
    counts["dead_letter_reasons"] = {s: dict(c) for s, c in dlq.items()}
    return counts, problems


async def check_payments(http, urls, cfg, prefix: str, paid_keys: list[str]) -> tuple[dict, list[str]]:
    """No dossier processed unpaid, none paid twice: every dossier of a fee reached routing
    only once its payment was settled, each has one order on the payment platform, charged
    once, its receipt kept; its applicant was confirmed by the population database, whatever
    its outages."""
    problems: list[str] = []
    conn = await asyncpg.connect(cfg.database_url)
    try:
        # over every dossier of the namespace, not only this run's: routing never holds one unpaid
        unpaid_routed = await conn.fetchval(
            f"SELECT count(*) FROM {prefix}intake.payments p JOIN {prefix}routing.dossiers r "
            "ON r.dossier_id = p.dossier_id WHERE p.status IN ('creating', 'pending')"
        )
        rows = await conn.fetch(
            f"SELECT d.code, d.identity_status, d.identity_attempts, d.paid_online_at, p.status, p.order_id, p.receipt_no, "
            f"EXISTS (SELECT 1 FROM {prefix}routing.dossiers r WHERE r.dossier_id = d.id) AS routed "
            f"FROM {prefix}intake.dossiers d LEFT JOIN {prefix}intake.payments p ON p.dossier_id = d.id "
            "WHERE substr(d.idempotency_key, strpos(d.idempotency_key, '/') + 1) = ANY($1)",
            paid_keys,
        )
    finally:
        await conn.close()
    orders = (await http.get(f"{urls['payment']}/control/orders")).json()["orders"]
    ours = {r["code"] for r in rows}
    orders_of = Counter(o["reference"] for o in orders if o["reference"] in ours)
    charged = Counter(o["reference"] for o in orders if o["reference"] in ours and o["charges"] >= 1)
    receipt_of = {o["order_id"]: o["receipt_no"] for o in orders}
    counts = {
        "fee_dossiers": len(paid_keys),
        "fees_settled": sum(1 for r in rows if r["status"] == "paid" and r["paid_online_at"] is not None),
        "fee_dossiers_routed": sum(1 for r in rows if r["routed"]),
        "routed_unpaid": unpaid_routed,
        "payment_orders": sum(orders_of.values()),
        "charged_more_than_once": sum(1 for o in orders if o["reference"] in ours and o["charges"] > 1)
        + sum(1 for n in charged.values() if n > 1),
        "receipts_kept": sum(1 for r in rows if r["receipt_no"] and r["receipt_no"] == receipt_of.get(r["order_id"])),
        "identities_confirmed": sum(1 for r in rows if r["identity_status"] == "confirmed"),
        "identities_to_confirm": sum(1 for r in rows if r["identity_status"] == "to_confirm"),
        # received "to be confirmed" while the database was down, confirmed by a later check
        "identities_confirmed_later": sum(
            1 for r in rows if r["identity_status"] == "confirmed" and r["identity_attempts"] > 0
        ),
    }
    if unpaid_routed:
        problems.append(f"routing holds {unpaid_routed} dossiers whose fee is unpaid")
    if counts["charged_more_than_once"]:
        problems.append(f"{counts['charged_more_than_once']} fees were charged twice")
    if any(n > 1 for n in orders_of.values()):
        problems.append(f"{sum(1 for n in orders_of.values() if n > 1)} dossiers got more than one payment order")
    if len(rows) != len(paid_keys):
        problems.append(f"intake has {len(rows)} of {len(paid_keys)} dossiers of a fee")
    if counts["fees_settled"] != len(paid_keys) or counts["receipts_kept"] != len(paid_keys):
        problems.append(
            f"{counts['fees_settled']} of {len(paid_keys)} fees settled, {counts['receipts_kept']} receipts kept"
        )
    if counts["identities_confirmed"] != len(paid_keys):
        problems.append(
            f"{counts['identities_confirmed']} of {len(paid_keys)} applicants confirmed by the population database "
            f"({counts['identities_to_confirm']} still to confirm)"
        )
    return counts, problems


async def check_documents(
    cfg, settings: Settings, documents: DocumentsDriver, earlier: int = 0
) -> tuple[dict, list[str]]:
    """Each document sent is registered once and arrived at its recipient once: one
    "arrived" row and one status event each; the documents service parked nothing."""
    prefix = settings.schema_prefix
    problems: list[str] = []
    numbers = list(documents.sent)
    conn = await asyncpg.connect(cfg.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT doc.id, doc.number, d.recipient_agency, d.status, (SELECT count(*) FROM {prefix}documents.delivery_statuses s "
            f"WHERE s.document_id = doc.id AND s.recipient_agency = d.recipient_agency AND s.status = 'arrived') AS arrivals "
            f"FROM {prefix}documents.documents doc JOIN {prefix}documents.deliveries d ON d.document_id = doc.id "
            f"WHERE doc.number = ANY($1)",
            numbers,
        )
    finally:
        await conn.close()
    counts = {
        "documents_sent": len(numbers),
        "documents_registered": len({r["number"] for r in rows}),
        "documents_arrived": sum(1 for r in rows if r["status"] == "arrived" and r["arrivals"] == 1),
    }
    if counts["documents_registered"] != len(numbers):
        problems.append(f"documents has {counts['documents_registered']} of {len(numbers)} documents")
    if counts["documents_arrived"] != len(numbers):
        problems.append(
            f"{len(numbers) - counts['documents_arrived']} documents not arrived once "
            f"(statuses: {sorted(Counter(r['status'] for r in rows).items())})"
        )
    ids = {str(r["id"]) for r in rows}
    records = await all_records(cfg.operator(), settings.topic("document"))
    arrived_events = Counter()
    for r in records:
        if dict(r.headers).get("ce_type") == b"vn.lgsp.document.status_changed.v1":
            body = json.loads(r.value)
            if body["document_id"] in ids and body["status"] == "arrived":
                arrived_events[(body["document_id"], body["recipient_agency"])] += 1
    counts["document_arrival_events_doubled"] = sum(1 for n in arrived_events.values() if n > 1)
    if counts["document_arrival_events_doubled"]:
        problems.append(f"{counts['document_arrival_events_doubled']} document arrivals were published twice")
    counts["documents_dead_letters"] = len((await dead_letters_of(cfg, settings, "documents"))[earlier:])
    if counts["documents_dead_letters"]:
        problems.append(f"documents dead-lettered {counts['documents_dead_letters']} records")
    return counts, problems


def throwaway_platform(tag: str, brokers: int | None, instances: int):
    """The local stack, a fresh namespace ``<tag><run id>`` prepared on it, and the platform
    (not started yet) that runs in it, throttling lifted: (cfg, env, settings, platform), or
    None when the stack cannot start."""
    from ops.platform import UNTHROTTLED, RunningPlatform, start_stack

    cfg = start_stack(tag, brokers)
    if cfg is None:
        return None
    run_id = uuid.uuid4().hex[:6]
    env = {
        "LGSP_TOPIC_PREFIX": f"{tag}{run_id}",
        "LGSP_SCHEMA_PREFIX": f"{tag}{run_id}_",
        **UNTHROTTLED,
        "LGSP_SCHEDULER_INTERVAL_S": "2",
        "LGSP_WORKER_INTERVAL_S": "0.2",
        # the third parties' outages are seconds long: ask again within seconds of their end
        "LGSP_POPULATION_RECHECK_S": "5",
        "LGSP_POPULATION_BREAKER_OPEN_S": "5",
        "LGSP_PAYMENT_POLL_S": "5",
    }
    stack.prepare_namespace(cfg, env["LGSP_TOPIC_PREFIX"], env["LGSP_SCHEMA_PREFIX"])
    settings = Settings(topic_prefix=env["LGSP_TOPIC_PREFIX"], schema_prefix=env["LGSP_SCHEMA_PREFIX"])
    return cfg, env, settings, RunningPlatform(env, settings.state_dir / tag / run_id, instances=instances)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lgsp chaos")
    parser.add_argument("--dossiers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=40, help="dossiers/s offered")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=64,
        help="most submissions outstanding at once (backpressure: beyond it, the offered rate waits)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for everything to settle")
    parser.add_argument("--fuzz-examples", type=int, default=200, help="schemathesis examples per operation (0: skip)")
    parser.add_argument("--instances", type=int, default=1, help="processes per service (the second of each is killed)")
    parser.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=None,
        help="Kafka brokers of the local stack: on 3, one broker and then the dossier topic's "
        "leader are SIGKILLed instead of the single one (default: as last started)",
    )
    args = parser.parse_args(argv)
    prepared = throwaway_platform("chaos", args.brokers, args.instances)
    if prepared is None:
        return 1
    cfg, env, settings, running = prepared
    result = {"problems": ["interrupted"]}
    try:
        running.start(say=say)
        result = asyncio.run(run(running.procs, cfg, settings, args.dossiers, args.rate, args.timeout, args.in_flight))
        if args.fuzz_examples:
            from ops.fuzz import SERVICES as FUZZED
            from ops.fuzz import fuzz

            token = IDENTITIES.operator.token_sync()
            for name in FUZZED:
                rc, out = fuzz(running.procs[name].url, args.fuzz_examples, token=token)
                cases = next((line.strip() for line in out.splitlines() if re.match(r"\s*\d+ generated", line)), "")
                say(f"fuzz {name}: {cases or 'no summary'}{'' if rc == 0 else ' -- FAILURES'}")
                if rc != 0:
                    result["problems"].append(f"fuzzing {name} found a 5xx or a crash:\n{out}")
    finally:
        running.stop()
        if result["problems"] and result["problems"] != ["interrupted"]:
            say(
                f"the run's topics {env['LGSP_TOPIC_PREFIX']}.* and schemas {env['LGSP_SCHEMA_PREFIX']}* are kept to look into"
            )
        else:
            stack.drop_namespace(cfg, env["LGSP_TOPIC_PREFIX"], env["LGSP_SCHEMA_PREFIX"])
    print(json.dumps(result, indent=2, ensure_ascii=False))
    say(
        "RECONCILED: nothing lost, nothing done twice"
        if not result["problems"]
        else "PROBLEMS: " + "; ".join(result["problems"])
    )
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
