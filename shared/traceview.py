"""Read the local span files (``.lgsp/traces/*.jsonl``) and print one trace as a tree."""

from __future__ import annotations

import json
from pathlib import Path


def load_trace(trace_dir: Path, trace_id: str) -> list[dict]:
    spans = []
    for path in sorted(trace_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if trace_id in line:
                    span = json.loads(line)
                    if span["trace_id"] == trace_id:
                        spans.append(span)
    return sorted(spans, key=lambda s: s["start"])


def render_tree(spans: list[dict], keep=None) -> str:
    """The spans as an indented tree; ``keep`` (a predicate) hides the others, their
    children moving up to the nearest kept ancestor."""
    if not spans:
        return "(no spans found)"
    by_parent: dict[str | None, list[dict]] = {}
    ids = {s["span_id"] for s in spans}
    for s in spans:
        parent = s["parent_id"] if s["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(s)
    t0 = spans[0]["start"]
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in by_parent.get(parent, []):
            if keep is not None and not keep(s):
                walk(s["span_id"], depth)
                continue
            ms = (s["end"] - s["start"]) / 1e6
            offset = (s["start"] - t0) / 1e6
            flag = "" if s["status"] != "ERROR" else "  [ERROR]"
            lines.append(f"{'  ' * depth}{s['service']:>8} | +{offset:8.1f} ms {ms:7.1f} ms | {s['name']}{flag}")
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)
