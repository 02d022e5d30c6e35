"""The operator's long commands stop cleanly: SIGTERM (a supervisor, `kill`) to `lgsp demo`
or `lgsp chaos` stops every service and simulator they started, as Ctrl-C does. They used
to be left running, orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ops.stack import REPO_ROOT

INTAKE = "http://127.0.0.1:8081/health"  # the platform these commands start listens on the default ports


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--dossiers", "20", "--no-stay"],
        ["chaos", "--dossiers", "100000", "--rate", "2", "--fuzz-examples", "0"],
    ],
)
def test_sigterm_stops_every_process_the_command_started(local_stack, tmp_path, command):
    with pytest.raises(httpx.HTTPError):  # nothing of an earlier run answers there
        httpx.get(INTAKE, timeout=1)
    env = {**os.environ, "LGSP_PROFILE": "local"}
    with open(tmp_path / "out.log", "wb") as out:
        lgsp = subprocess.Popen(
            [str(Path(sys.executable).with_name("lgsp")), *command],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert lgsp.poll() is None, (tmp_path / "out.log").read_text()[-3000:]
            if answers(INTAKE):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the command's services did not come up:\n" + (tmp_path / "out.log").read_text()[-3000:])
        started = descendants(lgsp.pid)
        assert len(started) >= 5, started  # the simulators and the services, each its own process
        lgsp.send_signal(signal.SIGTERM)
        lgsp.wait(90)
        # a short-lived helper caught in the snapshot may take a moment to end by itself; a
        # service or simulator left behind would not
        settle = time.monotonic() + 10
        while any(alive(pid) for pid in started) and time.monotonic() < settle:
            time.sleep(0.2)
        left = [
            (pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]) for pid in started if alive(pid)
        ]
        assert left == [], f"left running after SIGTERM: {left}"
        with pytest.raises(httpx.HTTPError):
            httpx.get(INTAKE, timeout=1)
    finally:
        if lgsp.poll() is None:
            lgsp.kill()
        for pid in descendants(lgsp.pid):
            os.kill(pid, signal.SIGKILL)
