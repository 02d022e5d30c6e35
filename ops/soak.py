"""``lgsp soak``: the platform at a steady rate for a long time, a fault every few minutes,
each process's memory and open connections sampled all along; then a reconciliation.

A leak shows as growth: the report compares each service process's resident memory (RSS) and
open sockets at the end with just after the warm-up, and flags growth beyond 10 %. The plot
(PNG) shows every sample. The faults rotate through the chaos run's (ops/chaos.py): a service
instance SIGKILLed and restarted, a broker paused or killed, PostgreSQL restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path

import httpx

from ops import stack
from ops.chaos import (
    DocumentsDriver,
    Driver,
    dead_letters_of,
    faults,
    plan_kinds,
    reconcile,
    restore_third_parties,
    say,
    throwaway_platform,
    watch,
)
from ops.clients import platform_http
from ops.processes import ServiceProcess
from shared.settings import Settings
from shared.topics import ALL_SERVICES

GROWTH_LIMIT = 0.10  # the target: no more than 10 % growth after warm-up


def sample(procs: dict[str, ServiceProcess], peers: dict[int, str]) -> dict[str, dict[str, int]]:
    """Each running service process's pid, resident memory (kB) and open sockets, from /proc;
    the sockets also counted by what they connect to (``peers``: remote port -> name, e.g. the
    PostgreSQL and Kafka ports), so that a rise can be traced to the pool that made it."""
    remote = _remote_ports()
    found = {}
    for name, p in procs.items():
        if p.proc is None or p.proc.poll() is not None or p.module:  # simulators are not under test
            continue
        try:
            status = Path(f"/proc/{p.proc.pid}/status").read_text()
            rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            inodes = [
                link[8:-1]
                for fd in Path(f"/proc/{p.proc.pid}/fd").iterdir()
                if (link := _link(fd)).startswith("socket:[")
            ]
        except (OSError, StopIteration, ValueError):
            continue
        found[name] = {"pid": p.proc.pid, "rss_kb": rss, "sockets": len(inodes)}
        for kind in sorted(set(peers.values())):
            found[name][f"to_{kind}"] = sum(1 for i in inodes if peers.get(remote.get(i, 0)) == kind)
    return found


def _remote_ports() -> dict[str, int]:
    """Socket inode -> remote TCP port, for every TCP socket on this machine."""
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9:
                ports[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    return ports


def _link(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:
        return ""


def _lives(series: list[tuple[float, dict]]) -> list[list[tuple[float, dict]]]:
    """A name's samples cut where its pid changes: each piece is one process's life."""
    lives: list[list[tuple[float, dict]]] = []
    for t, v in series:
        if not lives or lives[-1][-1][1].get("pid") != v.get("pid"):
            lives.append([])
        lives[-1].append((t, v))
    return lives


def _window_change(values: list[float]) -> float | None:
    """The median of the last quarter of ``values`` against the median of the first quarter,
    as a fraction (medians, so that one busy sample moves nothing)."""
    k = max(2, len(values) // 4)
    first, last = statistics.median(values[:k]), statistics.median(values[-k:])
    return round((last - first) / first, 3) if first else None


MEASURES = ("rss_kb", "sockets")


def growth(samples: list[tuple[float, dict]], warm_up_s: float) -> dict[str, dict[str, float | None]]:
    """Per process name and measure: the growth over the longest judged life of the process.
    A life is the samples of one pid (a process restarted by a fault starts a new one); it is
    judged from ``warm_up_s`` after its start (the run's start for the first life) and only
    with at least 4 samples there, else None. ``from_s``: where the judged span begins."""
    out: dict[str, dict[str, float | None]] = {}
    for name in sorted({n for _, s in samples for n in s}):
        lives = _lives([(t, s[name]) for t, s in samples if name in s])
        judged = []
        for k, life in enumerate(lives):
            born = 0.0 if k == 0 else life[0][0]
            span = [(t, v) for t, v in life if t >= born + warm_up_s]
            if len(span) >= 4:
                judged.append(span)
        if not judged:
            out[name] = {m: None for m in MEASURES}
            continue
        span = max(judged, key=len)
        out[name] = {m: _window_change([v[m] for _, v in span]) for m in MEASURES}
        out[name]["from_s"] = round(span[0][0], 1)
        out[name]["lives"] = len(lives)
    return out


def service_sockets_growth(samples: list[tuple[float, dict]], warm_up_s: float) -> dict[str, float | None]:
    """Per service: the growth of the open sockets of all its processes together, after the
    warm-up (medians of the first and last quarters, as ``growth``). The instances of a
    service share its partitions: when a rebalance moves a partition from one to the other,
    the connections to that partition's leader move with it, so one instance's count can rise
    by a quarter while the other's falls as much. A leak raises the total; a move does not."""
    totals: dict[str, list[int]] = {}
    for t, s in samples:
        if t < warm_up_s:
            continue
        by_service: dict[str, int] = {}
        for name, v in s.items():
            service = name.split("-", 1)[0]
            by_service[service] = by_service.get(service, 0) + v["sockets"]
        for service, n in by_service.items():
            totals.setdefault(service, []).append(n)
    return {service: _window_change(values) if len(values) >= 4 else None for service, values in sorted(totals.items())}


def plot(samples: list[tuple[float, dict]], warm_up_s: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    names = sorted({n for _, s in samples for n in s})
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    for name in names:
        points = [(t / 60, s[name]) for t, s in samples if name in s]
        top.plot([t for t, _ in points], [v["rss_kb"] / 1024 for _, v in points], label=name)
        middle.plot([t for t, _ in points], [v["sockets"] for _, v in points], label=name)
    for service in sorted({n.split("-", 1)[0] for n in names}):
        totals = [
            (t / 60, sum(v["sockets"] for n, v in s.items() if n.split("-", 1)[0] == service)) for t, s in samples
        ]
        bottom.plot([t for t, _ in totals], [n for _, n in totals], label=service)
    for axis in (top, middle, bottom):
        axis.axvline(warm_up_s / 60, color="grey", linestyle=":")
        axis.grid(alpha=0.3)
    top.set_ylabel("RSS (MB)")
    middle.set_ylabel("open sockets, per process")
    bottom.set_ylabel("open sockets, per service")
    bottom.set_xlabel("minutes (dotted: end of warm-up)")
    top.legend(fontsize=7, ncol=3)
    bottom.legend(fontsize=7, ncol=5)
    top.set_title("soak: each service process's memory and connections")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


async def soak(
    procs: dict[str, ServiceProcess],
    cfg: stack.StackConfig,
    settings: Settings,
    minutes: float,
    rate: float,
    fault_every_min: float,
    sample_every_s: float,
    warm_up_min: float,
    timeout: float,
) -> dict:
    urls = {name: p.url for name, p in procs.items()}
    n = int(minutes * 60 * rate)
    driver = Driver(urls, uuid.uuid4().hex[:6], random.Random(11))
    await plan_kinds(driver, urls, n)
    earlier = {s: len(await dead_letters_of(cfg, settings, s)) for s in ALL_SERVICES}
    documents = DocumentsDriver(urls["documents"], procs["documents"].env["LGSP_DOCUMENTS_PKI_DIR"], driver.run_id)
    await documents.prepare(max(6, int(minutes)))
    doc_every = max(1, n // len(documents.prepared))
    # a third party is out for a minute at a time: faults come minutes apart, and a citizen
    # waiting for a payment order gives up after five
    rotation = [(label, act) for _, label, act in faults(procs, cfg, settings.topic("dossier"), outage_s=60)]
    samples: list[tuple[float, dict]] = []
    peers = {cfg.pg_port: "postgres", **{cfg.broker_port(node): "kafka" for node in cfg.nodes}}
    struck: list[tuple[str, float, float]] = []  # label, struck, action over
    t0 = time.perf_counter()

    async def sampler(stop: asyncio.Event) -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, await asyncio.to_thread(sample, procs, peers)))
            try:
                async with asyncio.timeout(sample_every_s):
                    await stop.wait()
            except TimeoutError:
                pass

    async def fault_rotation(stop: asyncio.Event) -> None:
        k = 0
        while True:
            try:
                async with asyncio.timeout(fault_every_min * 60):
                    await stop.wait()
                return
            except TimeoutError:
                pass
            label, act = rotation[k % len(rotation)]
            k += 1
            say(f"{label} ({time.perf_counter() - t0:.0f} s in; {driver.progress(n)})")
            began = time.perf_counter()
            await asyncio.to_thread(act)
            struck.append((label, began, time.perf_counter()))

    stop = asyncio.Event()
    async with platform_http(timeout=20, limits=httpx.Limits(max_connections=20)) as http, driver:
        helpers = [
            asyncio.create_task(sampler(stop)),
            asyncio.create_task(fault_rotation(stop)),
            asyncio.create_task(watch(driver, n, stop, every_s=60)),
        ]
        tasks = []
        for i in range(n):
            due = t0 + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(await driver.start(i, due))
            if i % doc_every == 0 and i // doc_every < len(documents.prepared):
                tasks.append(asyncio.create_task(documents.send(i // doc_every)))
        await asyncio.gather(*tasks)
        stop.set()
        try:
            await asyncio.gather(*helpers)
        finally:
            await restore_third_parties(urls)  # an outage the rotation began may not have ended
        await asyncio.gather(*driver.paying)
        submit_s = time.perf_counter() - t0
        result = await reconcile(http, urls, cfg, settings, driver, 0, timeout, documents, earlier)
    warm_up_s = warm_up_min * 60
    result["samples"] = [{"t_s": round(t, 1), **s} for t, s in samples]
    result["faults"] = [label for label, _, _ in struck]
    result["recovery_s"] = {
        f"{label} #{k + 1}": None if (r := driver.recovery_after(at, over)) is None else round(r, 2)
        for k, (label, at, over) in enumerate(struck)
    }
    result["phases"] = {"submit_s": round(submit_s, 1)}
    result["driver"] = {
        "offered": driver.offered,
        "accepted": driver.accepted,
        "late": driver.late,
        "failed": driver.failures,
    }
    judged = judge(samples, warm_up_s)
    result["problems"] += judged.pop("judged")
    result.update(judged)
    result["plot"] = str(plot(samples, warm_up_s, settings.state_dir / "soak" / "soak.png"))
    return result


def judge(samples: list[tuple[float, dict]], warm_up_s: float) -> dict:
    """Flat or not, after the warm-up: each process's resident memory (its longest judged
    life), and each service's open sockets, all its instances together (see
    ``service_sockets_growth``; each process's own socket growth is reported beside it)."""
    growth_ = growth(samples, warm_up_s)
    services = service_sockets_growth(samples, warm_up_s)
    grown = {f"{n} rss_kb": m["rss_kb"] for n, m in growth_.items() if (m["rss_kb"] or 0) > GROWTH_LIMIT}
    grown |= {f"{n} sockets (all instances)": g for n, g in services.items() if (g or 0) > GROWTH_LIMIT}
    problems = [f"grew more than {GROWTH_LIMIT:.0%} after warm-up: {grown}"] if grown else []
    return {"growth": growth_, "service_sockets_growth": services, "judged": problems}


def rejudge(recorded: Path, warm_up_s: float, out: Path | None) -> int:
    """The judgement of a recorded soak (its reconciliation is what it recorded)."""
    result = json.loads(recorded.read_text(encoding="utf-8"))
    samples = [(s.pop("t_s"), s) for s in (dict(s) for s in result["samples"])]
    judged = judge(samples, warm_up_s)
    reconciled = [p for p in result["problems"] if not str(p).startswith("grew more than")]
    problems = reconciled + judged.pop("judged")
    print(json.dumps({**judged, "reconciliation_problems": reconciled, "problems": problems}, indent=2))
    if out is not None:
        plot(samples, warm_up_s, out)
        say(f"plot written to {out}")
    say("SOAKED: flat and reconciled" if not problems else "PROBLEMS: " + "; ".join(map(str, problems)))
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lgsp soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60, help="how long dossiers stream in")
    parser.add_argument("--rate", type=float, default=10, help="dossiers/s, steady")
    parser.add_argument("--fault-every", type=float, default=5, help="minutes between faults")
    parser.add_argument("--sample-every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--warm-up", type=float, default=5, help="minutes before growth is judged")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for everything to settle")
    parser.add_argument("--instances", type=int, default=1, help="processes per service")
    parser.add_argument("--brokers", type=int, choices=[1, 3], default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the plot here (e.g. docs/soak.png)")
    parser.add_argument(
        "--judge",
        type=Path,
        default=None,
        metavar="SOAK_JSON",
        help="run nothing: judge the samples a soak recorded (its soak.json) again, and draw them",
    )
    args = parser.parse_args(argv)
    if args.judge is not None:
        return rejudge(args.judge, args.warm_up * 60, args.out)
    prepared = throwaway_platform("soak", args.brokers, args.instances)
    if prepared is None:
        return 1
    cfg, env, settings, running = prepared
    result: dict = {"problems": ["interrupted"]}
    try:
        running.start(say=say)
        result = asyncio.run(
            soak(
                running.procs,
                cfg,
                settings,
                args.minutes,
                args.rate,
                args.fault_every,
                args.sample_every,
                args.warm_up,
                args.timeout,
            )
        )
    finally:
        running.stop()
        if result["problems"] == ["interrupted"] or not result["problems"]:
            stack.drop_namespace(cfg, env["LGSP_TOPIC_PREFIX"], env["LGSP_SCHEMA_PREFIX"])
    if args.out and "plot" in result:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(Path(result["plot"]).read_bytes())
    report = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    (settings.state_dir / "soak" / "soak.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    say(
        "SOAKED: flat and reconciled"
        if not result["problems"]
        else "PROBLEMS: " + "; ".join(map(str, result["problems"]))
    )
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
