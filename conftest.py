"""Fixtures for every test: the real local stack, and an isolated namespace per test run.

Each run gets its own topic prefix and schema prefix, so runs never see each other's data
and nothing needs cleaning. A missing stack fails the tests loudly; it never skips them.

Time: ``LGSP_CLOCK_AT`` (see shared/clock.py) moves the whole run to another instant. It is
pinned here once, before any service process starts, so the services, the simulators and the
tests all read the same clock (the ``clock`` fixture). Tests either use that clock for every
relative time or fix time for everything they touch with a ``FixedClock``; none reads the
wall clock beside a fixed instant.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from ops import stack
from ops.processes import edge_env
from shared.clock import SystemClock, clock_from_env
from shared.settings import Settings, settings_class

RUN_ID = uuid.uuid4().hex[:8]
# Runs side by side (ops/instants.py) each listen on their own ports: this run's are shifted by it.
PORT_OFFSET = int(os.environ.get("LGSP_TEST_PORT_OFFSET", "0"))
os.environ["LGSP_PROFILE"] = "local"  # the tests run the local stack, with its public local secrets
PLATFORM_CLOCK = clock_from_env()  # pins LGSP_CLOCK_OFFSET_S for every process started below


def pytest_collection_modifyitems(config, items) -> None:
    """Each test's tier, from what it needs: one that asks for the local stack (itself or
    through another fixture) is a platform test (``stack``); any other runs in memory
    (``unit``: `make unit`, and again at every awkward instant of `make test`)."""
    for item in items:
        item.add_marker("stack" if "local_stack" in getattr(item, "fixturenames", ()) else "unit")


def pytest_report_header(config) -> str:
    return f"platform clock: {PLATFORM_CLOCK.now().isoformat()} ({PLATFORM_CLOCK!r})"


@pytest.fixture(scope="session")
def clock() -> SystemClock:
    """The clock the services of this run read: relative times in tests come from it."""
    return PLATFORM_CLOCK


@pytest.fixture(scope="session")
def local_stack() -> stack.StackConfig:
    try:
        return stack.start()
    except stack.StackError as exc:
        pytest.fail(f"the local stack is required and could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp(f"run-{RUN_ID}")


@pytest.fixture(scope="session")
def test_env(local_stack, run_dir) -> dict[str, str]:
    """Environment for service processes started by tests."""
    return {
        "LGSP_KAFKA_BOOTSTRAP": local_stack.bootstrap,
        "LGSP_OIDC_ISSUER": local_stack.issuer,
        "DATABASE_URL": local_stack.database_url,
        **local_stack.files_env(),  # the stack's S3 API: every platform test runs the S3 back end
        "LGSP_TOPIC_PREFIX": f"t{RUN_ID}",
        "LGSP_SCHEMA_PREFIX": f"t{RUN_ID}_",
        "LGSP_TRACE_DIR": str(run_dir / "traces"),
        "LGSP_DOCUMENTS_PKI_DIR": str(run_dir / "pki"),  # made by the `pki` fixture, valid around the run's clock
        "LGSP_PROFILE": "local",  # the simulators know the local stack's secrets
        "LGSP_RETRY_BACKOFF_S": "0.05",
        "LGSP_SCHEDULER_INTERVAL_S": "0.5",
        "LGSP_WORKER_INTERVAL_S": "0.2",
        # deterministic whatever the hour the tests run at; quiet hours and rate limits have their own tests
        "LGSP_QUIET_HOURS": "00:00-00:00",
        "LGSP_RATE_LIMIT_PER_HOUR": "100000",
        # every test's anonymous refusal is recorded row by row; tests/test_trust_second_pass.py sends more
        "LGSP_AUDIT_ANONYMOUS_PER_MINUTE": "300",
        # small enough for a test to fill one agency's document storage (test_trust_second_pass.py)
        "LGSP_DOCUMENTS_AGENCY_QUOTA_BYTES": "20000000",
        "LGSP_FILE_MAX_BYTES": "3000000",  # small enough to pass in a test (tests/test_dossier_files.py)
        # the population database's answers checked again, and its circuit retried, within a test's patience
        "LGSP_POPULATION_RECHECK_S": "1",
        "LGSP_POPULATION_BREAKER_OPEN_S": "2",
        "LGSP_PAYMENT_POLL_S": "2",  # an order whose callback was lost is polled within a test's patience
        **edge_env(
            carrier=18191 + PORT_OFFSET,
            messaging=18192 + PORT_OFFSET,
            smtp=18125 + PORT_OFFSET,
            portal=18193 + PORT_OFFSET,
            axis=18194 + PORT_OFFSET,
            population=18195 + PORT_OFFSET,
            payment=18196 + PORT_OFFSET,
        ),
    }


@pytest.fixture(scope="session")
def namespace(local_stack):
    """Creates a namespace's topics and the services' Kafka rights on it, as the operator.
    When the session ends, every topic and schema of this run (named ``t<RUN_ID>…``) goes."""

    async def prepare(topic_prefix: str, schema_prefix: str) -> None:
        assert topic_prefix.startswith(f"t{RUN_ID}") and schema_prefix.startswith(f"t{RUN_ID}"), (
            "a test's namespace is named after its run, so that the run can leave nothing behind"
        )
        await asyncio.to_thread(stack.prepare_namespace, local_stack, topic_prefix, schema_prefix)

    yield prepare
    topics, schemas = stack.drop_namespace(local_stack, f"t{RUN_ID}", f"t{RUN_ID}", every_topic_starting=True)
    print(f"\n[tests] removed this run's {topics} topics and {schemas} schemas")


@pytest.fixture(scope="session")
async def topics(test_env, namespace) -> None:
    await namespace(test_env["LGSP_TOPIC_PREFIX"], test_env["LGSP_SCHEMA_PREFIX"])


@pytest.fixture(scope="session")
def settings_for(test_env, topics):
    """Settings of a service in this run's namespace, for in-process use."""

    def make(service_name: str, **overrides) -> Settings:
        env = {k: v for k, v in test_env.items()}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return settings_class(service_name)(service_name=service_name, **overrides)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return make


@pytest.fixture
async def service_db(settings_for):
    """Opens a fresh, migrated schema of a service for one test: ``await service_db("routing",
    MIGRATIONS)`` gives (settings, pool)."""
    from shared.db import create_pool, migrate

    pools = []

    async def open_schema(service: str, migrations: Path):
        settings = settings_for(service, schema_prefix=f"t{RUN_ID}_{uuid.uuid4().hex[:6]}_")
        pool = await create_pool(settings.database_url, settings.schema)
        await migrate(pool, settings.schema, migrations)
        pools.append(pool)
        return settings, pool

    yield open_schema
    for pool in pools:
        await pool.close()


class Platform:
    """The services of this test run, each a separate process."""

    def __init__(self, procs: dict, pki_dir: Path) -> None:
        self.procs = procs
        self.pki_dir = pki_dir

    def __getitem__(self, name: str):
        return self.procs[name]

    def decisions(self, documents_url: str | None = None):
        """Decisions issued through this run's documents service, signed with its test PKI."""
        from ops.clients import Decisions

        return Decisions(documents_url or self["documents"].url, self.pki_dir, PLATFORM_CLOCK.now())

    def agencies(self, http, routing_url: str | None = None, documents_url: str | None = None):
        """Agencies acting through this run's routing, issuing decisions through its documents service."""
        from ops.clients import Agencies

        return Agencies(http, routing_url or self["routing"].url, self.decisions(documents_url))


TEST_PORTS = {
    name: port + PORT_OFFSET
    for name, port in {"intake": 18081, "routing": 18082, "postal": 18083, "notify": 18084, "documents": 18088}.items()
}


@pytest.fixture(scope="session")
def pki(test_env, clock):
    """The run's test PKI (ops/pki.py): what the documents service trusts, and every
    agency's and official's signing credentials."""
    from ops.identity import agency_names
    from ops.pki import TestPki

    return TestPki.create(Path(test_env["LGSP_DOCUMENTS_PKI_DIR"]), clock.now(), agency_names())


async def _upload_samples(intake_url: str) -> None:
    """The component files ``ops.clients.documents_for`` names, uploaded once as the platform's
    driver (the portal most tests submit as); a test that submits as another system uploads
    its own."""
    from ops.clients import platform_http, upload_component_files

    async with platform_http() as http:
        for variant in ("three_level", "two_level"):
            await upload_component_files(http, intake_url, variant)


@pytest.fixture(scope="session")
def platform(test_env, topics, run_dir, pki):
    """Every service (shared/services.py) and the third-party simulators, each its own process."""
    from ops.processes import SERVICES, service, simulator

    procs = {}
    try:
        for name in ("carrier", "messaging", "portal", "axis", "population", "payment"):
            port = int(
                test_env[
                    {
                        "carrier": "LGSP_CARRIER_URL",
                        "messaging": "LGSP_SMS_URL",
                        "portal": "LGSP_PORTAL_URL",
                        "axis": "LGSP_AXIS_URL",
                        "population": "LGSP_POPULATION_URL",
                        "payment": "LGSP_PAYMENT_URL",
                    }[name]
                ].rsplit(":", 1)[1]
            )
            procs[name] = simulator(name, test_env, run_dir / "logs", port=port).start()
        for name in SERVICES:
            procs[name] = service(name, test_env, run_dir / "logs", port=TEST_PORTS[name]).start()
        asyncio.run(_upload_samples(procs["intake"].url))
        yield Platform(procs, Path(test_env["LGSP_DOCUMENTS_PKI_DIR"]))
    finally:
        for p in procs.values():
            p.stop()
