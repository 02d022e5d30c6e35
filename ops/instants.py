"""The suite at awkward instants, side by side: for each instant, the unit tier and the
platform tests whose outcome depends on the clock (marker ``instants``) run with the whole
platform's clock moved there (``LGSP_CLOCK_AT``), each run in its own namespace, on its own
ports and in its own temporary folder, all at once. Prints each run's summary as it ends, and
the whole output of any that failed.

    python -m ops.instants 2026-12-31T23:59:00+07:00 2027-02-03T16:59:00+07:00 ...
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ops.stack import REPO_ROOT

PORT_STEP = 1000  # run k listens on the suite's ports + k * PORT_STEP
SELECTION = "unit or instants"


def main(argv: list[str] | None = None) -> int:
    instants = list(sys.argv[1:] if argv is None else argv)
    if not instants:
        print("ops.instants: no instant given; nothing to run")
        return 0
    out_dir = REPO_ROOT / ".lgsp" / "instants"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, Path, subprocess.Popen]] = []
    t0 = time.monotonic()
    for k, at in enumerate(instants, start=1):
        log = out_dir / f"run-{k}.log"
        env = {**os.environ, "LGSP_CLOCK_AT": at, "LGSP_TEST_PORT_OFFSET": str(k * PORT_STEP)}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-ra",
            "-m",
            SELECTION,
            "-p",
            "no:cacheprovider",
            f"--basetemp={out_dir / f'tmp-{k}'}",
        ]
        print(f"== the platform's clock at {at}: {SELECTION} (log: {log.relative_to(REPO_ROOT)})", flush=True)
        runs.append(
            (at, log, subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
        )
    failed = []
    for at, log, proc in runs:
        code = proc.wait()
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        print(f"== {at}: {lines[-1] if lines else 'no output'} ({time.monotonic() - t0:.0f} s)", flush=True)
        if code != 0:
            failed.append((at, log))
    for at, log in failed:
        print(f"\n== FAILED at {at}; its whole output:\n{log.read_text(encoding='utf-8', errors='replace')}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
