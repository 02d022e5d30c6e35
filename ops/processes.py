"""Run the platform's services as separate OS processes, as in production: for the demo,
the benchmarks and the tests that cross services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ops.stack import REPO_ROOT
from shared import services as registry

SERVICE_PORTS = {s.name: s.port for s in registry.SERVICES}
SERVICES = registry.NAMES  # in start order: consumers before the edge
SIMULATOR_PORTS = {
    "carrier": 8091,
    "messaging": 8092,
    "portal": 8093,
    "axis": 8094,
    "population": 8095,
    "payment": 8096,
}
CONSOLE_PORT = registry.CONSOLE.port
SMTP_PORT = 8025


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    module: str = ""
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "LGSP_HTTP_PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module or f"services.{self.name}", *self.args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.wait_healthy(wait)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}\n{self.tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s; log: {self.log_path}\n{self.tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def service(name: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> ServiceProcess:
    """A service, connecting to the database as its own role (ops/stack.py, prepare_schemas)."""
    from ops.stack import StackConfig, service_database_url

    owner = env.get("DATABASE_URL") or StackConfig.from_env().database_url
    env = {**env, "DATABASE_URL": service_database_url(owner, name)}
    return ServiceProcess(name, port or SERVICE_PORTS[name], env, log_dir / f"{name}.log")


def console(env: dict[str, str], log_dir: Path, urls: dict[str, str], port: int | None = None) -> ServiceProcess:
    """The console, reading the services at ``urls`` (name -> base URL)."""
    env = {**env, **{f"LGSP_{name.upper()}_URL": url for name, url in urls.items() if name in SERVICE_PORTS}}
    return ServiceProcess("console", port or CONSOLE_PORT, env, log_dir / "console.log")


def simulator(name: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> ServiceProcess:
    port = port or SIMULATOR_PORTS[name]
    return ServiceProcess(
        f"{name}-sim",
        port,
        env,
        log_dir / f"{name}-sim.log",
        module=f"ops.simulators.{name}",
        args=("--port", str(port)),
    )


def edge_env(
    carrier: int,
    messaging: int,
    smtp: int,
    portal: int,
    axis: int = SIMULATOR_PORTS["axis"],
    population: int = SIMULATOR_PORTS["population"],
    payment: int = SIMULATOR_PORTS["payment"],
) -> dict[str, str]:
    """Settings that point the services at the simulators."""
    return {
        "LGSP_CARRIER_URL": f"http://127.0.0.1:{carrier}",
        "LGSP_SMS_URL": f"http://127.0.0.1:{messaging}",
        "LGSP_ZALO_URL": f"http://127.0.0.1:{messaging}",
        "LGSP_SMTP_PORT": str(smtp),
        "SIM_SMTP_PORT": str(smtp),
        "LGSP_PORTAL_URL": f"http://127.0.0.1:{portal}",
        "LGSP_AXIS_URL": f"http://127.0.0.1:{axis}",
        "LGSP_POPULATION_URL": f"http://127.0.0.1:{population}",
        "LGSP_PAYMENT_URL": f"http://127.0.0.1:{payment}",
        # the result's message links citizens to the console's public rating page
        "LGSP_RATING_URL": f"http://127.0.0.1:{CONSOLE_PORT}/danh-gia",
    }
