"""``lgsp fuzz``: schemathesis generates requests from each service's OpenAPI document and
checks that none is answered with a 5xx (bad input gets a readable 4xx, never a crash)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SERVICES = ("intake", "routing", "postal", "notify")


def fuzz(url: str, examples: int, report_dir: Path | None = None) -> tuple[int, str]:
    """Run schemathesis against one service; returns its exit code and the tail of its output."""
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", str(examples),
           "--phases", "examples,coverage,fuzzing", "--no-color", "--seed", "2026"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    return proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lgsp fuzz")
    parser.add_argument("--examples", type=int, default=300, help="examples per operation")
    for s, port in zip(SERVICES, (8081, 8082, 8083, 8084)):
        parser.add_argument(f"--{s}-url", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    failed = 0
    for s in SERVICES:
        rc, out = fuzz(getattr(args, f"{s}_url"), args.examples)
        print(f"[fuzz] {s}: {'no 5xx' if rc == 0 else 'FAILURES'}\n{out}", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
