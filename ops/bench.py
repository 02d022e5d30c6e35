"""``make bench``: how fast the platform is on this machine, in one run.

Starts the local stack, the simulators and the services (shared/services.py) as separate processes, then:
1. measures the raw ceilings: aiokafka produce and consume messages/s for the platform's
   message size and producer settings, and asyncpg single-row commits/s;
2. offers dossiers at a fixed rate, then at full speed, through intake's HTTP API, while an
   "agency robot" takes each one to its terminal state through routing's API;
3. prints and writes as JSON: dossiers/s and events/s, latency submit -> receipt message sent
   and submit -> returned (p50/p95/p99/max), peak RSS of every process, consumer lag over
   time, commits and events per dossier (counted), and the ratios to the ceilings.
Targets are printed beside the figures; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ops import stack
from ops.clients import documents_for, platform_http, result_scan
from ops.identity import IDENTITIES
from ops.platform import UNTHROTTLED, RunningPlatform, start_stack
from shared.clock import clock_from_env
from shared.kafka_access import KafkaAccess
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topic_reader import partitions

PROCEDURE, AGENCY = "2.000908", "000.21.12.H40"  # certified copy at a commune: decide + return
TARGETS = {"dossiers_per_s": 150, "commits_per_dossier": 15, "p99_receipt_ms_at_30": 250, "rss_mb_per_service": 150}
SERVICE_NAMES = ("intake", "routing", "postal", "notify")


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "p99": pct(values, 0.99),
        "max": max(values) if values else None,
        "mean": statistics.fmean(values) if values else None,
    }


def rss_mb(pid: int, field: str = "VmHWM") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def postgres_rss_mb(cfg: stack.StackConfig) -> float | None:
    """Resident memory of the PostgreSQL server: the postmaster and its backends."""
    pidfile = cfg.pg_data / "postmaster.pid"
    if not pidfile.exists():
        return None
    root = int(pidfile.read_text().split()[0])
    total = rss_mb(root, "VmRSS") or 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().split()
            except OSError:
                continue
            if int(stat[3]) == root:
                total += rss_mb(int(proc.name), "VmRSS") or 0.0
    return total


CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int, with_children: bool = False) -> int:
    """utime + stime of a process (and of its reaped children), in clock ticks; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks + (int(fields[13]) + int(fields[14]) if with_children else 0)  # cutime, cstime


def cpu_snapshot(cfg: stack.StackConfig, running: RunningPlatform) -> dict[str, int]:
    """CPU ticks used so far by every process of the run: services, simulators, this driver,
    the S3 server, Kafka, and PostgreSQL (the postmaster, its live backends, and those already reaped)."""
    snap = {name: _cpu_ticks(p.proc.pid) for name, p in running.procs.items() if p.proc}
    snap["driver (bench)"] = _cpu_ticks(os.getpid())
    if pid := stack.s3_pid(cfg):
        snap["s3 (S3Proxy)"] = _cpu_ticks(pid)
    for node, pid in stack.kafka_pids(cfg).items():
        snap["kafka" if cfg.kafka_brokers == 1 else f"kafka-{node}"] = _cpu_ticks(pid)
    pidfile = cfg.pg_data / "postmaster.pid"
    if pidfile.exists():
        root = int(pidfile.read_text().split()[0])
        total = _cpu_ticks(root, with_children=True)
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == root:
                        total += _cpu_ticks(int(proc.name))
                except (OSError, ValueError, IndexError):
                    continue
        snap["postgres"] = total
    return snap


def cpu_ms_per_dossier(before: dict[str, int], after: dict[str, int], dossiers: int) -> dict[str, float]:
    per = {k: (after.get(k, 0) - before.get(k, 0)) * CLOCK_TICK_MS / max(1, dossiers) for k in after}
    return {"total": sum(per.values()), **dict(sorted(per.items(), key=lambda kv: -kv[1]))}


# ------------------------------------------------------------------ ceilings


async def kafka_ceiling(kafka: KafkaAccess, prefix: str, size: int, n: int, partitions_n: int = 3) -> dict:
    """Raw produce and consume rates of the broker, on a scratch topic of its own that is
    deleted afterwards (no service reads it, and nothing is left behind)."""
    topic = f"{prefix}.scratch-ceiling-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions_n, replication_factor=1)])
        producer = kafka_producer(kafka)
        await producer.start()
        try:
            await producer.partitions_for(topic)  # metadata first: not part of the rate
            payload = b"x" * size
            t0 = time.perf_counter()
            futures = [await producer.send(topic, payload, key=str(i % 64).encode()) for i in range(n)]
            await asyncio.gather(*futures)
            produce_s = time.perf_counter() - t0
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            **kafka.options(), enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions_n)])
            await consumer.seek_to_beginning()
            got, t0 = 0, time.perf_counter()
            while got < n:
                batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
                if not batch:
                    break
                got += sum(len(v) for v in batch.values())
            consume_s = time.perf_counter() - t0
        finally:
            await consumer.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    return {
        "messages": n,
        "bytes": size,
        "produce_per_s": n / produce_s,
        "consume_per_s": got / consume_s,
        "consumed": got,
    }


async def postgres_ceiling(database_url: str, n: int) -> dict:
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TEMP TABLE bench_commits (id uuid PRIMARY KEY, at timestamptz)")
    t0 = time.perf_counter()
    for _ in range(n):
        async with conn.transaction():
            await conn.execute("INSERT INTO bench_commits VALUES ($1, now())", uuid.uuid4())
    elapsed = time.perf_counter() - t0
    await conn.close()
    return {"commits": n, "commits_per_s": n / elapsed}


# ------------------------------------------------------------------ load


class ClientPool:
    """HTTP clients of one connection each, lent one to a request at a time. httpcore checks
    every connection a client holds before each request (two system calls each), so one
    client of 64 connections cost the driver more CPU per dossier than some services."""

    def __init__(self, size: int, identity=None, **options) -> None:
        self._clients = [
            platform_http(identity, limits=httpx.Limits(max_connections=1), **options) for _ in range(size)
        ]
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self._clients:
            self._idle.put_nowait(client)

    async def __aenter__(self) -> "ClientPool":
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients))

    @asynccontextmanager
    async def lend(self):
        client = await self._idle.get()
        try:
            yield client
        finally:
            self._idle.put_nowait(client)


class Load:
    def __init__(self, urls: dict, run_id: str, file_kb: int = 0) -> None:
        self.urls = urls
        self.run_id = run_id
        self.file_kb = file_kb  # each component a file of its own of this size, uploaded first (0: shared samples)
        self.submitted: list[str] = []  # dossier codes
        self.failures = 0
        self.body = {
            "channel": "counter",
            "procedure_code": PROCEDURE,
            "agency_code": AGENCY,
            "applicant": {
                "full_name": "Trịnh Thị Bích Ngọc",
                "id_number": "037190001234",
                "phone": "0912000999",
                "address": "Xóm Đồng, xã Ninh Hải, huyện Hoa Lư, Ninh Bình",
            },
            "documents": documents_for(PROCEDURE),
            "notify_via": ["sms"],
        }

    async def submit(self, http: httpx.AsyncClient, i: int, phase: str) -> None:
        key = f"bench-{self.run_id}-{phase}-{i}"
        # a citizen each: one phone number for every dossier would make one very busy recipient
        body = {**self.body, "applicant": {**self.body["applicant"], "phone": f"09{i % 10**8:08d}"}}
        documents = None if self.file_kb else body["documents"]
        for attempt in range(5):
            try:
                if documents is None:  # uploaded once; a retry of the submission names the same files
                    documents = await self.upload(http, body["documents"])
                r = await http.post(
                    f"{self.urls['intake']}/v1/dossiers",
                    json={**body, "documents": documents},
                    headers={"Idempotency-Key": key},
                )
                if r.status_code in (200, 201):
                    self.submitted.append(r.json()["code"])
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(0.1 * 2**attempt, 2))
        self.failures += 1

    async def upload(self, http: httpx.AsyncClient, documents: list[dict]) -> list[dict]:
        """A scan of each component, ``file_kb`` KB of its own bytes (no two dossiers share a
        file, as no two citizens share papers), uploaded before the dossier names it."""
        named = []
        for d in documents:
            scan = b"%PDF-1.7\n" + os.urandom(self.file_kb * 1024 - 9)
            r = await http.post(
                f"{self.urls['intake']}/v1/files", content=scan, headers={"content-type": "application/pdf"}
            )
            r.raise_for_status()
            named.append({"component": d["component"], "name": d["name"], "sha256": r.json()["sha256"]})
        return named

    async def fixed_rate(self, rate: float, seconds: float, max_in_flight: int = 64) -> tuple[float, int]:
        """Offer ``rate`` dossiers/s (open loop). When ``max_in_flight`` are already waiting,
        the platform is not keeping up: the offer is shed and counted, not queued without end."""
        shed = 0

        async def submit(i: int) -> None:
            async with clients.lend() as http:
                await self.submit(http, i, f"rate{rate:g}")

        async with ClientPool(max_in_flight, timeout=30) as clients:
            n = int(rate * seconds)
            t0 = time.perf_counter()
            tasks: set[asyncio.Task] = set()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(tasks) >= max_in_flight:
                    shed += 1
                else:
                    task = asyncio.create_task(submit(i))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if i % max(1, int(rate)) == 0:
                    print(f"\r[bench] offered {i}/{n} at {rate:g}/s, shed {shed}", end="", flush=True)
            await asyncio.gather(*tasks)
            print()
            return time.perf_counter() - t0, shed

    async def full_speed(self, seconds: float, concurrency: int) -> tuple[int, float]:
        before = len(self.submitted)
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))
        async with ClientPool(concurrency, timeout=30) as clients:

            async def worker():
                async with clients.lend() as http:
                    while time.perf_counter() < deadline:
                        await self.submit(http, next(counter), "full")

            async def show():
                while time.perf_counter() < deadline:
                    await asyncio.sleep(1)
                    print(f"\r[bench] full speed: {len(self.submitted) - before} accepted", end="", flush=True)

            t0 = time.perf_counter()
            await asyncio.gather(*[worker() for _ in range(concurrency)], show())
            print()
            return len(self.submitted) - before, time.perf_counter() - t0


async def agency_robot(routing_url: str, stop: asyncio.Event) -> int:
    """An agency's system: take every dossier in the commune's queue to its return."""
    done = 0
    # the commune's official, through the agency's system
    official = IDENTITIES.official(AGENCY)
    async with platform_http(official, timeout=30) as http, ClientPool(24, official, timeout=30) as clients:
        # the result's scan, uploaded once: every approval names it (the same paper form each time)
        scan = await http.post(
            f"{routing_url}/v1/files", content=result_scan(AGENCY), headers={"content-type": "application/pdf"}
        )
        scan.raise_for_status()
        result = {"name": "Bản sao.pdf", "sha256": scan.json()["sha256"]}

        async def finish(d: dict) -> None:
            nonlocal done
            async with clients.lend() as client:
                base = f"{routing_url}/v1/dossiers/{d['code']}"
                who = {"agency_code": AGENCY}
                try:
                    if d["status"] == "processing" and d["step_status"] == "assigned":
                        await client.post(f"{base}/accept", json=who)
                    if d["status"] == "processing":  # accepted now, or earlier by a call whose answer was lost
                        await client.post(
                            f"{base}/resolve", json={**who, "outcome": "approved", "result_document": result}
                        )
                    elif d["status"] == "resolved":
                        r = await client.post(f"{base}/return", json={**who, "method": "counter"})
                        done += r.status_code == 200
                except httpx.HTTPError:
                    pass

        while not stop.is_set():
            try:
                queue = (await http.get(f"{routing_url}/v1/agencies/{AGENCY}/dossiers")).json()
            except httpx.HTTPError:
                queue = []
            returned_before = done
            await asyncio.gather(*[finish(d) for d in queue])
            if not queue or done == returned_before:
                await asyncio.sleep(0.1)  # nothing moved: do not spin on the queue
    return done


async def lag_sampler(kafka: KafkaAccess, topic: str, groups: list[str], series: list, stop: asyncio.Event) -> None:
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    consumer = AIOKafkaConsumer(**kafka.options())
    await consumer.start()
    tps = await partitions(kafka, topic)
    t0 = time.perf_counter()
    try:
        while not stop.is_set():
            ends = await consumer.end_offsets(tps)
            point = {"t": round(time.perf_counter() - t0, 1)}
            for g in groups:
                committed = await admin.list_consumer_group_offsets(g, partitions=tps)
                point[g] = sum(
                    ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                    for tp in tps
                )
            series.append(point)
            await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
        await admin.close()


# ------------------------------------------------------------------ measuring from the databases


async def latencies(database_url: str, prefix: str, codes: list[str]) -> dict:
    conn = await asyncpg.connect(database_url)
    try:
        receipt = await conn.fetch(
            f"SELECT extract(epoch FROM n.sent_at - d.received_at) * 1000 AS ms FROM {prefix}intake.dossiers d "
            f"JOIN {prefix}notify.notifications n ON n.dossier_id = d.id AND n.event_type = 'vn.lgsp.dossier.received.v1' "
            "AND n.status = 'sent' WHERE d.code = ANY($1)",
            codes,
        )
        terminal = await conn.fetch(
            f"SELECT extract(epoch FROM r.finished_at - r.received_at) * 1000 AS ms FROM {prefix}routing.dossiers r "
            "WHERE r.code = ANY($1) AND r.status = 'returned'",
            codes,
        )
        last_sent = await conn.fetchval(
            f"SELECT max(n.sent_at) FROM {prefix}intake.dossiers d JOIN {prefix}notify.notifications n ON n.dossier_id = d.id "
            "AND n.event_type = 'vn.lgsp.dossier.received.v1' WHERE d.code = ANY($1)",
            codes,
        )
        first = await conn.fetchval(f"SELECT min(received_at) FROM {prefix}intake.dossiers WHERE code = ANY($1)", codes)
    finally:
        await conn.close()
    return {
        "receipt_ms": summary([float(r["ms"]) for r in receipt]),
        "terminal_ms": summary([float(r["ms"]) for r in terminal]),
        "first_received": first,
        "last_receipt_sent": last_sent,
    }


async def commits(database_url: str) -> tuple[int, int]:
    """(transactions committed, transaction ids assigned) so far. The first counts every
    transaction, read-only polls included; the second only those that wrote (PostgreSQL gives
    an id to a transaction at its first write; reading the next id assigns none)."""
    conn = await asyncpg.connect(database_url)
    try:
        committed = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        next_xid = await conn.fetchval("SELECT txid_snapshot_xmax(txid_current_snapshot())")
        return committed, next_xid
    finally:
        await conn.close()


async def statement_profile(database_url: str, reset: bool = False, top: int = 15) -> list[dict] | None:
    """The statements the platform ran most often since the last reset (pg_stat_statements,
    which the local stack loads), or None where the extension is not there."""
    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
            return None
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
            return []
        rows = await conn.fetch(
            "SELECT s.calls, s.total_exec_time, s.query, r.rolname FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY s.calls DESC LIMIT $1",
            top,
        )
        return [
            {
                "calls": r["calls"],
                "ms": round(r["total_exec_time"], 1),
                "role": r["rolname"],
                "query": " ".join(r["query"].split())[:160],
            }
            for r in rows
        ]
    finally:
        await conn.close()


async def topic_size(kafka: KafkaAccess, topic: str) -> int:
    consumer = AIOKafkaConsumer(**kafka.options())
    await consumer.start()
    try:
        tps = await partitions(kafka, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def wait_drained(database_url: str, prefix: str, codes: list[str], timeout: float) -> float:
    """Seconds until every dossier's receipt message went out and every dossier was returned."""
    t0 = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        while time.perf_counter() - t0 < timeout:
            sent = await conn.fetchval(
                f"SELECT count(*) FROM {prefix}intake.dossiers d JOIN {prefix}notify.notifications n ON n.dossier_id = d.id "
                "AND n.event_type = 'vn.lgsp.dossier.received.v1' AND n.status = 'sent' WHERE d.code = ANY($1)",
                codes,
            )
            returned = await conn.fetchval(
                f"SELECT count(*) FROM {prefix}routing.dossiers WHERE code = ANY($1) AND status = 'returned'", codes
            )
            print(
                f"\r[bench] draining: {sent}/{len(codes)} receipts sent, {returned}/{len(codes)} returned",
                end="",
                flush=True,
            )
            if sent >= len(codes) and returned >= len(codes):
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
        print()
    return time.perf_counter() - t0


# ------------------------------------------------------------------ the run


async def measure(args, cfg: stack.StackConfig, running: RunningPlatform, settings: Settings) -> dict:
    topic = settings.topic("dossier")
    prefix = settings.schema_prefix
    say("raw ceilings of this machine…")
    ceilings = {
        "kafka": await kafka_ceiling(cfg.operator(), settings.topic_prefix, args.message_bytes, args.ceiling_messages),
        "postgres": await postgres_ceiling(cfg.database_url, args.ceiling_commits),
    }
    say(
        f"kafka produce {ceilings['kafka']['produce_per_s']:.0f} msg/s, consume {ceilings['kafka']['consume_per_s']:.0f} msg/s; "
        f"postgres {ceilings['postgres']['commits_per_s']:.0f} commits/s"
    )

    load = Load(running.urls, uuid.uuid4().hex[:6], args.file_kb)
    stop = asyncio.Event()
    lag: list = []
    robot = asyncio.create_task(agency_robot(running.urls["routing"], stop))
    sampler = asyncio.create_task(
        lag_sampler(cfg.operator(), topic, [f"{prefix}{s}" for s in SERVICE_NAMES], lag, stop)
    )

    phases = {}
    sweep = []
    for rate in args.sweep:
        say(f"sweep: {rate:g} dossiers/s offered for {args.sweep_seconds:g} s")
        before = len(load.submitted)
        offered_s, shed = await load.fixed_rate(rate, args.sweep_seconds)
        codes = load.submitted[before:]
        await wait_drained(cfg.database_url, prefix, codes, args.drain_timeout)
        lat = await latencies(cfg.database_url, prefix, codes)
        sweep.append(
            {
                "offered_per_s": rate,
                "accepted_per_s": len(codes) / offered_s,
                "shed": shed,
                "receipt_ms": lat["receipt_ms"],
                "terminal_ms": lat["terminal_ms"],
            }
        )
    phases["sweep"] = sweep

    say(f"phase 1: {args.rate:g} dossiers/s offered for {args.seconds:g} s")
    before_rate = len(load.submitted)
    offered, shed = await load.fixed_rate(args.rate, args.seconds)
    rate_codes = load.submitted[before_rate:]
    drain = await wait_drained(cfg.database_url, prefix, rate_codes, args.drain_timeout)
    phases["fixed_rate"] = {
        "offered_per_s": args.rate,
        "accepted": len(rate_codes),
        "shed": shed,
        "offer_s": offered,
        "accepted_per_s": len(rate_codes) / offered,
        "drain_s": drain,
        **await latencies(cfg.database_url, prefix, rate_codes),
    }

    say(f"phase 2: full speed for {args.seconds:g} s with {args.concurrency} concurrent submitters")
    await statement_profile(cfg.database_url, reset=True)
    c0, e0 = await commits(cfg.database_url), await topic_size(cfg.operator(), topic)
    cpu0 = cpu_snapshot(cfg, running)
    t0 = time.perf_counter()
    accepted, submit_s = await load.full_speed(args.seconds, args.concurrency)
    full_codes = load.submitted[before_rate + len(rate_codes) :]
    drain = await wait_drained(cfg.database_url, prefix, full_codes, args.drain_timeout)
    total_s = time.perf_counter() - t0
    cpu1 = cpu_snapshot(cfg, running)
    c1, e1 = await commits(cfg.database_url), await topic_size(cfg.operator(), topic)
    lat = await latencies(cfg.database_url, prefix, full_codes)
    profile = await statement_profile(cfg.database_url)
    phases["full_speed"] = {
        "accepted": accepted,
        "submit_s": submit_s,
        "submitted_per_s": accepted / submit_s,
        "end_to_end_s": total_s,
        "dossiers_per_s": accepted / total_s,
        "events": e1 - e0,
        "events_per_s": (e1 - e0) / total_s,
        "events_per_dossier": (e1 - e0) / max(1, accepted),
        "commits_per_dossier": (c1[0] - c0[0]) / max(1, accepted),
        "writing_transactions_per_dossier": (c1[1] - c0[1]) / max(1, accepted),
        **lat,
        "cpu_ms_per_dossier": cpu_ms_per_dossier(cpu0, cpu1, accepted),
        "explicit_transactions_per_dossier": None
        if profile is None
        else sum(p["calls"] for p in profile if p["query"] == "COMMIT") / max(1, accepted),
        "statements_per_dossier": None
        if profile is None
        else [{**p, "per_dossier": round(p["calls"] / max(1, accepted), 2)} for p in profile],
    }
    stop.set()
    robot_done = await robot
    await sampler
    rss = {name: rss_mb(p.proc.pid) for name, p in running.procs.items() if p.proc}
    for node, pid in stack.kafka_pids(cfg).items():
        rss["kafka" if cfg.kafka_brokers == 1 else f"kafka-{node}"] = rss_mb(pid)
    rss["postgres (all backends, at end)"] = postgres_rss_mb(cfg)
    full = phases["full_speed"]
    ratios = {
        "dossier_events_vs_kafka_produce": full["events_per_s"] / ceilings["kafka"]["produce_per_s"],
        "dossier_commits_vs_postgres": full["dossiers_per_s"]
        * full["commits_per_dossier"]
        / ceilings["postgres"]["commits_per_s"],
        "dossiers_per_s_if_only_commits_limited": ceilings["postgres"]["commits_per_s"]
        / max(1e-9, full["commits_per_dossier"]),
    }
    return {
        "at": clock_from_env().now().isoformat(),
        "machine": {"cpus": os.cpu_count()},
        "targets": TARGETS,
        "brokers": cfg.kafka_brokers,
        "instances": running.instances,
        "file_kb": args.file_kb,
        "ceilings": ceilings,
        "phases": phases,
        "rss_mb": rss,
        "consumer_lag": lag,
        "ratios": ratios,
        "robot_returned": robot_done,
        "submit_failures": load.failures,
    }


def render(r: dict) -> str:
    fr, fs = r["phases"]["fixed_rate"], r["phases"]["full_speed"]

    def ms(s: dict) -> str:
        return (
            " / ".join("-" if s[k] is None else f"{s[k]:.0f}" for k in ("p50", "p95", "p99", "max"))
            + f" ms (n={s['n']})"
        )

    lag_max = {
        g: max((p[g] for p in r["consumer_lag"]), default=0)
        for g in (r["consumer_lag"][0] if r["consumer_lag"] else {})
        if g != "t"
    }
    lines = [
        "",
        f"{r.get('brokers', 1)} Kafka broker(s), {r.get('instances', 1)} instance(s) of each service, {r['machine']['cpus']} CPUs",
        (
            f"each dossier uploads its components first: one file of {r['file_kb']} KB each"
            if r.get("file_kb")
            else "no upload: the dossiers name files uploaded once before the run"
        ),
        f"{'figure':<52} {'measured':>22}   target",
        f"{'full speed: dossiers/s, submit to receipt+return':<52} {fs['dossiers_per_s']:>22.1f}   >= {TARGETS['dossiers_per_s']}",
        f"{'full speed: submissions accepted/s (HTTP)':<52} {fs['submitted_per_s']:>22.1f}",
        f"{'fixed rate: offered / accepted per s (shed)':<52} {str(fr['offered_per_s']) + ' / ' + format(fr['accepted_per_s'], '.1f') + ' (' + str(fr['shed']) + ')':>22}",
        f"{'full speed: events/s on the dossier topic':<52} {fs['events_per_s']:>22.1f}",
        f"{'events per dossier (counted)':<52} {fs['events_per_dossier']:>22.1f}",
        f"{'database commits per dossier (counted)':<52} {fs['commits_per_dossier']:>22.1f}   <= {TARGETS['commits_per_dossier']}",
        f"{'  of which wrote something (xids assigned)':<52} {fs.get('writing_transactions_per_dossier', 0):>22.1f}",
        f"{'  of which explicit (BEGIN ... COMMIT)':<52} {fs.get('explicit_transactions_per_dossier') or 0:>22.1f}",
        f"{'CPU ms per dossier, every process of the run':<52} {fs['cpu_ms_per_dossier']['total']:>22.1f}",
        f"{'at ' + str(fr['offered_per_s']) + '/s: submit -> receipt sent p50/95/99/max':<52} {ms(fr['receipt_ms']):>22}   p99 <= {TARGETS['p99_receipt_ms_at_30']} ms at 30/s",
        f"{'at ' + str(fr['offered_per_s']) + '/s: submit -> returned p50/95/99/max':<52} {ms(fr['terminal_ms']):>22}",
        f"{'full speed: submit -> receipt sent':<52} {ms(fs['receipt_ms']):>22}",
        f"{'full speed: submit -> returned':<52} {ms(fs['terminal_ms']):>22}",
        "",
        "offered-rate sweep: offered/s -> accepted/s (shed), submit -> receipt sent p50 / p99 ms:",
        *[
            f"  {x['offered_per_s']:>6g} -> {x['accepted_per_s']:>6.1f} ({x['shed']:>4})   "
            f"{x['receipt_ms']['p50'] or 0:>8.0f} / {x['receipt_ms']['p99'] or 0:>8.0f}"
            for x in r["phases"].get("sweep", [])
        ],
        "",
        "statements per dossier, most frequent first (pg_stat_statements, full speed):",
        *(
            [f"  {x['per_dossier']:>6.2f}  {x['role']:<14} {x['query'][:110]}" for x in fs["statements_per_dossier"]]
            if fs.get("statements_per_dossier")
            else ["  (pg_stat_statements is not loaded: restart the stack)"]
        ),
        "",
        "CPU ms per dossier, per process (full speed):",
        *[f"  {k:<40} {v:>10.2f}" for k, v in fs["cpu_ms_per_dossier"].items() if k != "total"],
        "",
        "peak RSS (MB):",
        *[
            f"  {k:<40} {v:>10.1f}"
            + (f"   target <= {TARGETS['rss_mb_per_service']}" if k.split("-")[0] in SERVICE_NAMES else "")
            for k, v in r["rss_mb"].items()
            if v is not None
        ],
        "",
        "max consumer lag (records): " + ", ".join(f"{g}={v}" for g, v in lag_max.items()),
        "",
        "ceilings of this machine:",
        f"  aiokafka produce {r['ceilings']['kafka']['produce_per_s']:.0f} msg/s, consume {r['ceilings']['kafka']['consume_per_s']:.0f} msg/s "
        f"({r['ceilings']['kafka']['bytes']} B)",
        f"  asyncpg single-row commits {r['ceilings']['postgres']['commits_per_s']:.0f}/s",
        f"  pipeline events/s vs kafka produce ceiling: {100 * r['ratios']['dossier_events_vs_kafka_produce']:.1f}%",
        f"  pipeline commits/s vs postgres commit ceiling: {100 * r['ratios']['dossier_commits_vs_postgres']:.1f}%",
        f"  dossiers/s if commits were the only limit: {r['ratios']['dossiers_per_s_if_only_commits_limited']:.0f}",
    ]
    return "\n".join(lines)


def plot_sweep(sweep: list[dict], path: Path) -> Path:
    """Throughput and latency against the offered rate, so the knee of the curve is plain."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    offered = [x["offered_per_s"] for x in sweep]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(offered, [x["accepted_per_s"] for x in sweep], "o-", label="accepted/s")
    top.plot(offered, offered, ":", color="grey", label="offered/s")
    top.set_ylabel("dossiers/s")
    top.legend()
    for q in ("p50", "p99"):
        bottom.plot(offered, [x["receipt_ms"][q] or 0 for x in sweep], "o-", label=f"submit -> receipt sent, {q}")
    bottom.axhline(TARGETS["p99_receipt_ms_at_30"], linestyle="--", color="red", label="p99 target at 30/s")
    bottom.set_yscale("log")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("offered dossiers/s")
    bottom.legend()
    fig.suptitle("LGSP bench: offered-rate sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lgsp bench")
    parser.add_argument("--rate", type=float, default=30, help="offered dossiers/s in phase 1")
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--instances", type=int, default=1, help="processes per service")
    parser.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=None,
        help="Kafka brokers of the local stack (default: as it was last started)",
    )
    parser.add_argument(
        "--sweep",
        type=lambda v: [float(x) for x in v.split(",") if x],
        default=[10, 30, 60, 100, 150],
        help="offered rates of the sweep, comma-separated ('' for none)",
    )
    parser.add_argument("--sweep-seconds", type=float, default=8, help="length of each rate of the sweep")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument(
        "--file-kb",
        type=int,
        default=200,
        help="each component a scan of this many KB of its own, uploaded before the dossier (0: no upload)",
    )
    parser.add_argument("--message-bytes", type=int, default=1500)
    parser.add_argument("--ceiling-messages", type=int, default=50_000)
    parser.add_argument("--ceiling-commits", type=int, default=3_000)
    args = parser.parse_args(argv)
    cfg = start_stack("bench", args.brokers)
    if cfg is None:
        return 1
    env = {
        "LGSP_TOPIC_PREFIX": "bench",
        "LGSP_SCHEMA_PREFIX": "bench_",
        **UNTHROTTLED,
        "LGSP_WORKER_INTERVAL_S": "1",
        "LGSP_SCHEDULER_INTERVAL_S": "30",
    }
    os.environ.update({k: v for k, v in env.items() if k in ("LGSP_TOPIC_PREFIX", "LGSP_SCHEMA_PREFIX")})
    settings = Settings()
    topics, schemas = stack.drop_namespace(cfg, settings.topic_prefix, settings.schema_prefix)
    say(f"a fresh namespace: the last run's {topics} topics and {schemas} schemas dropped")
    stack.prepare_namespace(cfg, settings.topic_prefix, settings.schema_prefix)
    out_dir = settings.state_dir / "bench"
    running = RunningPlatform(env, out_dir / "logs", instances=args.instances)
    try:
        running.start(say=say)
        result = asyncio.run(measure(args, cfg, running, settings))
    finally:
        running.stop()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{clock_from_env().now():%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(render(result))
    say(f"written to {path}")
    if result["phases"]["sweep"]:
        say(f"the sweep's plot: {plot_sweep(result['phases']['sweep'], path.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
