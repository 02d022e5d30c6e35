"""Starting the whole platform (simulators and the four services) as separate processes,
for the demo, the benchmark and the chaos run."""

from __future__ import annotations

import sys
from pathlib import Path

from ops import stack
from ops.processes import SERVICES, ServiceProcess, service, simulator


# The demo, the benchmark and the chaos run go at any hour and at full tilt: no quiet hours,
# no per-recipient throttling of the simulated messages.
UNTHROTTLED = {"LGSP_QUIET_HOURS": "00:00-00:00", "LGSP_RATE_LIMIT_PER_HOUR": "100000000"}


def start_stack(tag: str) -> stack.StackConfig | None:
    """The local stack, or None after saying why it cannot start."""
    try:
        return stack.start()
    except stack.StackError as exc:
        print(f"[{tag}] cannot start the local stack: {exc}", file=sys.stderr)
        return None


# The platform these commands start is the local one: its simulators know the local stack's
# built-in secrets, so the local profile is said here explicitly (shared/settings.py).
LOCAL_PROFILE = {"LGSP_PROFILE": "local"}


class RunningPlatform:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**LOCAL_PROFILE, **env}
        self.log_dir = log_dir
        self.procs: dict[str, ServiceProcess] = {}

    def start(self, say=print) -> "RunningPlatform":
        for name in ("carrier", "messaging", "portal"):
            say(f"starting the {name} simulator (log: {self.log_dir / (name + '-sim.log')})")
            self.procs[name] = simulator(name, self.env, self.log_dir).start()
        for name in SERVICES:
            say(f"starting {name} (log: {self.log_dir / (name + '.log')})")
            self.procs[name] = service(name, self.env, self.log_dir).start()
        return self

    @property
    def urls(self) -> dict[str, str]:
        return {name: p.url for name, p in self.procs.items()}

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()
