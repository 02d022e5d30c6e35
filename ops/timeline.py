"""``lgsp timeline CODE``: the process-control timeline (Phiếu kiểm soát quá trình giải quyết
hồ sơ) of one dossier, as routing recorded it from every service's events."""

from __future__ import annotations

import sys
from datetime import datetime

import httpx

from ops.identity import IDENTITIES, TokenRefused
from shared.dossier_text import local_text


def format_timeline(code: str, rows: list[dict]) -> str:
    lines = [f"Dossier {code}: {len(rows)} events", ""]
    lines.append(
        f"{'time (Asia/Ho_Chi_Minh)':<22} {'service':<9} {'event':<24} {'agency':<15} {'step due':<22} {'late':<5} trace"
    )
    for r in rows:
        at = local_text(datetime.fromisoformat(r["at"]))
        due = local_text(datetime.fromisoformat(r["step_due_at"])) if r["step_due_at"] else "-"
        late = {True: "LATE", False: "ok", None: "-"}[r["late"]]
        event = r["event_type"].removeprefix("vn.lgsp.").removeprefix("dossier.").removesuffix(".v1")
        service = r["source"].rsplit("/", 1)[-1]
        lines.append(
            f"{at:<22} {service:<9} {event:<24} {r['agency_code'] or '-':<15} {due:<22} {late:<5} {r['trace_id'] or '-'}"
        )
        lines.append(f"{'':<22} {r['summary']}")
    return "\n".join(lines)


def print_timeline(code: str, routing_url: str) -> int:
    try:
        resp = httpx.get(f"{routing_url}/v1/dossiers/{code}/timeline", timeout=10, auth=IDENTITIES.operator)
    except (httpx.HTTPError, TokenRefused) as exc:
        print(f"cannot reach routing at {routing_url}: {exc} (is it running? `lgsp run routing`)", file=sys.stderr)
        return 1
    if resp.status_code != 200:
        print(resp.json().get("title", resp.text), file=sys.stderr)
        return 1
    print(format_timeline(code, resp.json()))
    return 0
