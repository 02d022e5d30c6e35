"""Starting the whole platform (simulators, every service of shared/services.py and, for the demo, the
console) as separate processes, for the demo, the benchmark and the chaos run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ops import stack
from ops.processes import SERVICE_PORTS, SERVICES, SIMULATOR_PORTS, ServiceProcess, console, service, simulator

# The demo, the benchmark and the chaos run go at any hour and at full tilt: no quiet hours,
# no per-recipient throttling of the simulated messages.
# No quiet hours, no per-recipient message limit, and request quotas far above what one
# machine can send: the demo, bench and chaos drive the platform at full speed on purpose.
UNTHROTTLED = {
    "LGSP_QUIET_HOURS": "00:00-00:00",
    "LGSP_RATE_LIMIT_PER_HOUR": "100000000",
    "LGSP_QUOTA_DEFAULT": "100000/100000",
}


def start_stack(tag: str, brokers: int | None = None) -> stack.StackConfig | None:
    """The local stack (``brokers``: 1 or 3, default as last started), or None after saying why
    it cannot start."""
    try:
        return stack.start(stack.StackConfig.from_env(brokers))
    except stack.StackError as exc:
        print(f"[{tag}] cannot start the local stack: {exc}", file=sys.stderr)
        return None


# The platform these commands start is the local one: its simulators know the local stack's
# built-in secrets, so the local profile is said here explicitly (shared/settings.py).
LOCAL_PROFILE = {"LGSP_PROFILE": "local"}


def ensure_test_pki(folder: Path, say=print) -> Path:
    """The local platform's test PKI (what the documents service trusts), made once and made
    again when its CRLs near their next update."""
    import datetime as dt
    import json

    from ops.identity import agency_names
    from ops.pki import TestPki
    from shared.clock import clock_from_env

    now = clock_from_env().now()
    index = folder / "index.json"
    if index.is_file():
        made = dt.datetime.fromisoformat(json.loads(index.read_text(encoding="utf-8"))["moment"])
        if dt.timedelta(0) <= now - made < dt.timedelta(days=300):
            return folder
    say(f"making the test PKI for signed documents in {folder}")
    TestPki.create(folder, now, agency_names())
    return folder


INSTANCE_PORT_STEP = 100  # instance k of a service listens on its port + 100 * (k - 1)


def instance_name(service_name: str, k: int) -> str:
    return service_name if k == 1 else f"{service_name}-{k}"


class RunningPlatform:
    """The simulators and ``instances`` processes of each service. Instance 1 keeps the
    service's name and port (the drivers talk to it); the others share its consumer group,
    schema and locks, as a scaled-out deployment does."""

    def __init__(self, env: dict[str, str], log_dir: Path, instances: int = 1, with_console: bool = False) -> None:
        if instances < 1:
            raise ValueError("instances must be at least 1")
        # every broker of the local stack as bootstrap: a service restarted while one is down still connects
        cfg = stack.StackConfig.from_env()
        # the stack's own addresses, so that one on other ports (LGSP_KAFKA_PORT, LGSP_KEYCLOAK_PORT…) is used whole
        self.env = {
            **LOCAL_PROFILE,
            "LGSP_KAFKA_BOOTSTRAP": cfg.bootstrap,
            "LGSP_OIDC_ISSUER": cfg.issuer,
            **cfg.files_env(),
            **env,
        }
        self.log_dir = log_dir
        self.instances = instances
        self.with_console = with_console
        self.procs: dict[str, ServiceProcess] = {}

    def start(self, say=print) -> "RunningPlatform":
        if "LGSP_DOCUMENTS_PKI_DIR" not in self.env:
            self.env["LGSP_DOCUMENTS_PKI_DIR"] = str(ensure_test_pki(self.log_dir.parent / "pki", say))
        self.env.setdefault("LGSP_POPULATION_URL", f"http://127.0.0.1:{SIMULATOR_PORTS['population']}")
        self.env.setdefault("LGSP_PAYMENT_URL", f"http://127.0.0.1:{SIMULATOR_PORTS['payment']}")
        for name in SIMULATOR_PORTS:
            say(f"starting the {name} simulator (log: {self.log_dir / (name + '-sim.log')})")
            # kept before it is waited for: stopped on the way out even if interrupted while starting
            self.procs[name] = simulator(name, self.env, self.log_dir)
            self.procs[name].start()
        for k in range(1, self.instances + 1):
            log_dir = self.log_dir if k == 1 else self.log_dir / f"instance-{k}"
            for name in SERVICES:
                label = instance_name(name, k)
                say(f"starting {label} (log: {log_dir / (name + '.log')})")
                port = SERVICE_PORTS[name] + INSTANCE_PORT_STEP * (k - 1)
                self.procs[label] = service(name, self.env, log_dir, port=port)
                self.procs[label].start()
        if self.with_console:
            say(f"starting the console (log: {self.log_dir / 'console.log'})")
            self.procs["console"] = console(self.env, self.log_dir, {n: self.procs[n].url for n in SERVICES})
            self.procs["console"].start()
        say("the portal uploads its sample component files (POST /v1/files)")
        asyncio.run(self._upload_samples())
        return self

    async def _upload_samples(self) -> None:
        """The files the drivers' submissions name (``ops.clients.documents_for``), uploaded
        once as the driver's portal, as a portal uploads before it submits."""
        from ops.clients import platform_http, upload_component_files

        async with platform_http() as http:
            await upload_component_files(
                http, self.procs["intake"].url, self.env.get("LGSP_REFERENCE_VARIANT", "three_level")
            )

    @property
    def urls(self) -> dict[str, str]:
        return {name: p.url for name, p in self.procs.items()}

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()
