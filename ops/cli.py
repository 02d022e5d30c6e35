"""``lgsp``: the operator's one entry point.

lgsp stack start|stop|status|reset|restart-kafka   the local Kafka + PostgreSQL (--brokers 3: a cluster)
lgsp run SERVICE                                   run one service in the foreground
lgsp demo                                          the platform on its local stack, watched
lgsp topics [--json]                               the declared topics
lgsp timeline CODE                                 a dossier's process-control timeline
lgsp report [--from D --to D | --period P]         the managers' report per agency and level
lgsp trace TRACE_ID                                one trace across services, as a tree
lgsp dlq list SERVICE | lgsp dlq redrive SERVICE   dead letters: read them, send them back
lgsp kafka-access [--topic-prefix P]               Kafka users, topics, ACLs; schemas and DB roles
lgsp realm [--check]                               write (or check) the identity provider's realm file
lgsp audit [--dossier CODE] [--client ID] [--since T]   who changed what, and every refused call
"""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import signal
import sys
from datetime import datetime
from pathlib import Path

from shared.clock import ClockSettingError, clock_from_env
from shared.reference.calendar import LOCAL_TZ
from shared.services import CONSOLE, NAMES
from shared.settings import MissingSecret, Settings

LOCAL_COMMANDS = ("stack", "demo", "bench", "chaos", "soak", "fuzz")


def _stop_on_sigterm(signum, frame) -> None:
    """SIGTERM (a supervisor, `kill`) stops a command as Ctrl-C does: the services it started
    are stopped on the way out, not left running. A second one while stopping is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("lgsp: stopped", file=sys.stderr)
        return 130
    except MissingSecret as exc:
        print(f"lgsp: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lgsp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("stack", help="the local Kafka broker and PostgreSQL")
    st.add_argument(
        "action", choices=["start", "stop", "status", "reset", "restart-kafka", "kill-kafka", "start-kafka"]
    )
    st.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=None,
        help="with start: one Kafka broker, or a KRaft cluster of three (replication 3, "
        "min.insync.replicas 2); kept for later commands (default: as last started, else 1)",
    )
    rn = sub.add_parser("run", help="run one service in the foreground")
    rn.add_argument("service", choices=[*NAMES, CONSOLE.name])
    dm = sub.add_parser("demo", help="start everything and send dossiers through it")
    dm.add_argument("--dossiers", type=int, default=300, help="how many dossiers the replayed day has")
    dm.add_argument("--instances", type=int, default=1, help="processes per service")
    dm.add_argument(
        "--stay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the services and the console up after the demo until Ctrl-C (default: in a terminal)",
    )
    sub.add_parser("bench", help="benchmark: figures for this machine (see `lgsp bench -- --help`)", add_help=False)
    sub.add_parser(
        "chaos", help="kill services, the broker and the database under load; reconcile; fuzz", add_help=False
    )
    sub.add_parser(
        "soak",
        help="a steady rate for an hour, a fault every few minutes; memory and connections sampled",
        add_help=False,
    )
    sub.add_parser("fuzz", help="schemathesis against the running services' OpenAPI documents", add_help=False)
    tp = sub.add_parser("topics", help="the declared topics (shared/topics.py)")
    tp.add_argument("--json", action="store_true", help="as deploy/kafka/topics.json")
    tl = sub.add_parser("timeline", help="a dossier's process-control timeline, every hop across services")
    tl.add_argument("code", help="the dossier code, e.g. 000.21.12.H40-261123-0001")
    tl.add_argument("--routing-url", default=os.environ.get("LGSP_ROUTING_URL", "http://127.0.0.1:8082"))
    rp = sub.add_parser(
        "report",
        help="the managers' report per agency and level for a period; "
        "`report documents --month YYYY-MM`: the monthly documents report",
    )
    rp.add_argument("what", nargs="?", choices=["dossiers", "documents"], default="dossiers")
    rp.add_argument("--month", help="documents: the month, YYYY-MM (default: this month)")
    rp.add_argument("--documents-url", default=os.environ.get("LGSP_DOCUMENTS_URL", "http://127.0.0.1:8086"))
    rp.add_argument("--from", dest="start", help="ISO date or time (Vietnam time if no zone); default: today")
    rp.add_argument("--to", dest="end", help="ISO date or time, exclusive; default: the day after --from")
    rp.add_argument(
        "--period",
        help="instead of --from/--to: a period as the reporting regime closes it (15th of the month before "
        "to the 14th): YYYY-MM, YYYY-Qn or YYYY",
    )
    rp.add_argument("--intake-url", default=os.environ.get("LGSP_INTAKE_URL", "http://127.0.0.1:8081"))
    tr = sub.add_parser("trace", help="print one trace from the local span files")
    tr.add_argument("trace_id")
    ka = sub.add_parser("kafka-access", help="create the Kafka users, topics and ACLs of a namespace (as the broker)")
    ka.add_argument("--topic-prefix", default="lgsp")
    ka.add_argument("--schema-prefix", default="")
    au = sub.add_parser("audit", help="the audit log of every service: state changes and refused calls")
    au.add_argument("--dossier", help="only requests about this dossier code")
    au.add_argument("--client", help="only requests of this connected system (OAuth2 client id)")
    au.add_argument("--since", help="ISO 8601 time with a zone, e.g. 2026-11-24T08:00+07:00")
    au.add_argument("--limit", type=int, default=200)
    rl = sub.add_parser("realm", help="write the identity provider's realm file from the reference agencies")
    rl.add_argument("--check", action="store_true", help="only say whether the file is up to date")
    pk = sub.add_parser(
        "pki", help="generate the test PKI for signed documents (root, issuing CA, officials, agencies, CRLs)"
    )
    pk.add_argument("--out", type=Path, required=True, help="an empty or new folder")
    pk.add_argument(
        "--at", type=datetime.fromisoformat, default=None, help="the moment it is valid around (default: now)"
    )
    dl = sub.add_parser("dlq", help="dead-letter topics")
    dl.add_argument("action", choices=["list", "redrive"])
    dl.add_argument("service", choices=["intake", "routing", "postal", "notify"])
    argv = sys.argv[1:] if argv is None else argv
    try:
        # LGSP_CLOCK_AT moves the whole platform to another instant: every process this
        # command starts inherits the same offset (shared/clock.py).
        clock = clock_from_env()
    except ClockSettingError as exc:
        print(f"lgsp: {exc}", file=sys.stderr)
        return 2
    if argv and argv[0] in LOCAL_COMMANDS:
        # these start or drive the local stack, whose secrets are the public local ones
        os.environ.setdefault("LGSP_PROFILE", "local")
    if argv and argv[0] in ("bench", "chaos", "soak", "fuzz"):
        from ops import bench, chaos, fuzz, soak

        return {"bench": bench.main, "chaos": chaos.main, "soak": soak.main, "fuzz": fuzz.main}[argv[0]](argv[1:])
    args = parser.parse_args(argv)

    if args.command == "stack":
        from ops import stack

        return stack.main([args.action] + ([f"--brokers={args.brokers}"] if args.brokers else []))
    if args.command == "run":
        sys.argv = [f"services.{args.service}"]
        runpy.run_module(f"services.{args.service}", run_name="__main__")
        return 0
    if args.command == "demo":
        from ops import demo

        return demo.main(args.dossiers, args.instances, args.stay)
    if args.command == "topics":
        import json

        from shared.topics import definitions

        defs = definitions(Settings().topic_prefix)
        if args.json:
            print(json.dumps(defs, indent=2, ensure_ascii=False))
        else:
            for d in defs:
                print(f"{d['name']:<22} {d['partitions']:>3} partitions  {d['description']}")
        return 0
    if args.command == "timeline":
        from ops.timeline import print_timeline

        return print_timeline(args.code, args.routing_url)
    if args.command == "report" and args.what == "documents":
        from ops.report import print_documents_report

        return print_documents_report(
            args.documents_url, args.month or clock.now().astimezone(LOCAL_TZ).strftime("%Y-%m")
        )
    if args.command == "report":
        from ops.report import print_report

        return print_report(args.intake_url, args.start, args.end, clock.now(), args.period)
    if args.command == "trace":
        from shared.traceview import load_trace, render_tree

        print(render_tree(load_trace(Settings().traces_path, args.trace_id)))
        return 0
    if args.command == "kafka-access":
        from ops import stack

        stack.prepare_namespace(stack.StackConfig.from_env(), args.topic_prefix, args.schema_prefix)
        print(
            f"kafka users, topics {args.topic_prefix}.*, schemas {args.schema_prefix}* (migrated) and the services' "
            "rights on both are in place"
        )
        return 0
    if args.command == "audit":
        return print_audit(args)
    if args.command == "realm":
        from ops import identity

        return identity.main(["--check"] if args.check else [])
    if args.command == "pki":
        from ops.identity import agency_names
        from ops.pki import TestPki

        TestPki.create(args.out, args.at or clock.now(), agency_names())
        print(f"test PKI written to {args.out} (trust root: {args.out / 'root.pem'})")
        return 0
    if args.command == "dlq":
        from shared import dlq

        settings = Settings()
        if args.action == "list":
            letters = asyncio.run(dlq.list_dead_letters(settings, args.service))
            for d in letters:
                print(
                    f"{d.partition}@{d.offset}  {d.failed_at}  {d.event_type}  {d.event_id}  from {d.source}\n    reason: {d.reason}"
                )
            print(f"{len(letters)} dead letter(s) for {args.service}")
        else:
            print(f"re-drove {asyncio.run(dlq.redrive(settings, args.service))} dead letter(s) for {args.service}")
        return 0
    return 2


def print_audit(args) -> int:
    """Rows of every service's audit log, oldest first (read straight from the database, as
    the operator: DATABASE_URL and LGSP_SCHEMA_PREFIX say where)."""
    from datetime import datetime

    import asyncpg

    from shared.audit import query
    from shared.topics import ALL_SERVICES

    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        print(f"lgsp audit: --since {args.since!r} is not an ISO 8601 time", file=sys.stderr)
        return 2
    if since is not None and since.tzinfo is None:
        print("lgsp audit: --since needs a zone, e.g. +07:00", file=sys.stderr)
        return 2
    settings = Settings()

    async def fetch():
        from ops import stack

        # the database's owner: on the local stack with its kept password, elsewhere DATABASE_URL
        conn = await asyncpg.connect(
            os.environ.get("DATABASE_URL") or stack.StackConfig.from_env().database_url, timeout=10
        )
        try:
            return await query(
                conn,
                [f"{settings.schema_prefix}{s}" for s in ALL_SERVICES],
                dossier=args.dossier,
                client=args.client,
                since=since,
                limit=max(1, min(args.limit, 10_000)),
            )
        finally:
            await conn.close()

    rows = asyncio.run(fetch())
    for r in rows:
        who = r["username"] if r["username"] and not r["username"].startswith("service-account-") else r["client_id"]
        print(
            f"{r['at'].isoformat(timespec='seconds')}  {r['service']:<8} {r['method']:<5} {r['route']:<40} "
            f"{r['status']} {r['outcome']:<9} {who or 'anonymous'} {r['agency'] or '-'}  "
            f"req {r['request_id']}  trace {r['trace_id'] or '-'}" + (f"\n    {r['reason']}" if r["reason"] else "")
        )
    print(f"{len(rows)} audit record(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
