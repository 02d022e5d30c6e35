"""The composition root every service shares: settings, telemetry, database, outbox relay,
Kafka consumer. A service's ``app.py`` builds one, registers its handlers, and starts it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

from shared import operations
from shared.access import AccessControl, Policy, Resolver, TokenValidator, all_routes, api_routes, authorize
from shared.audit import AnonymousRefusals, AuditLog
from shared.clock import Clock, clock_from_env
from shared.consumer import EventConsumer
from shared.db import create_pool, migrate
from shared.files import BlobStore
from shared.http import install_edges
from shared.outbox import Outbox, OutboxRelay, kafka_producer
from shared.settings import Settings
from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing
from shared.topics import Topic, consumed_topics, dead_letter, require_topics
from shared.waking import woken

log = logging.getLogger(__name__)


async def run_periodically(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    wake: asyncio.Event | None = None,
    after_pass: Callable[[], None] = lambda: None,
) -> None:
    """A background worker: run ``step`` every ``interval_s`` seconds (at once again when it
    returns True: more work is waiting, or when ``wake`` is set: work was just committed).
    A failed pass is logged and retried at the next tick."""
    while True:
        try:
            more = await step()
            after_pass()
            if more is True:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next pass retries
            after_pass()
            log.warning("%s.error %s: %s", name, type(exc).__name__, exc)
        if wake is None:
            await asyncio.sleep(interval_s)
            continue
        await woken(wake, interval_s)
        wake.clear()


S = TypeVar("S", bound=Settings)


class ServiceRuntime(Generic[S]):
    """A service's process: its settings (the service's own class, ``services/<name>/settings.py``),
    clock, pool, outbox, consumer, relay, workers and HTTP client."""

    def __init__(self, settings: S, migrations_dir: Path | None, clock: Clock | None = None) -> None:
        self.settings: S = settings
        # The one clock of this process: handlers, workers and reports get "now" from it.
        self.clock: Clock = clock or clock_from_env()
        self._migrations_dir = migrations_dir
        self.pool: asyncpg.Pool
        self.outbox: Outbox
        self.consumer: EventConsumer
        self.relay: OutboxRelay
        self._broker: KafkaBroker | None = None
        self._dlq_producer: AIOKafkaProducer | None = None
        self._relay_task: asyncio.Task | None = None
        self._workers: list[asyncio.Task] = []
        self._wakes: list[asyncio.Event] = []
        self.http: httpx.AsyncClient  # for the service's third parties (carrier, providers, portal)
        self.topics: tuple[Topic, ...] = consumed_topics(settings.service_name)  # shared/topics.py
        self._stores: dict[str, BlobStore] = {}
        # the third parties this service calls, each with how it stands (the operations page)
        self.third_parties: dict[str, Callable[[], dict]] = {}

    def files(self, kind: str = "dossiers") -> BlobStore:
        """A namespace of the file store, opened once per process and closed with it."""
        if kind not in self._stores:
            self._stores[kind] = self.settings.file_store(kind)
        return self._stores[kind]

    async def open(self) -> None:
        """Everything but consumption: handlers are registered between open() and consume()."""
        s = self.settings
        setup_logging(s.service_name)
        provider = setup_tracing(s.service_name, s.traces_path, s.otlp_endpoint)
        await require_topics(s.kafka, s.topic_prefix, (*self.topics, dead_letter(s.service_name)))
        self.pool = await create_pool(s.database_url, s.schema)
        try:
            await migrate(self.pool, s.schema, self._migrations_dir)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise RuntimeError(
                f"schema {s.schema} has migrations not applied yet, and this service's database role "
                "may not change tables: apply them as the database's owner first "
                "(`lgsp kafka-access`, which the local stack runs at start)"
            ) from exc
        self.outbox = Outbox(s)
        self.relay = OutboxRelay(s, on_active=self._relay_active)
        self._relay_task = asyncio.create_task(self.relay.run(), name=f"{s.service_name}-outbox-relay")
        self._dlq_producer = kafka_producer(s.kafka)
        await self._dlq_producer.start()
        self.consumer = EventConsumer(s, self.pool, self._dlq_producer, self.clock, after_commit=self.after_commit)
        self.http = httpx.AsyncClient(timeout=10)
        self._broker = KafkaBroker(
            s.kafka.servers,
            security=s.kafka.broker_security(),
            middlewares=[KafkaTelemetryMiddleware(tracer_provider=provider)],
            logger=logging.getLogger(f"{s.service_name}.broker"),
            log_level=logging.DEBUG,  # one line per message is too loud at INFO
        )
        log.info("service.opened name=%s schema=%s clock=%r", s.service_name, s.schema, self.clock)

    async def consume(self, *topics: Topic) -> None:
        assert self._broker is not None
        self.consumer.subscribe(self._broker, *topics)
        await self._broker.start()
        log.info("service.consuming topics=%s", ",".join(self.settings.topic(t.name) for t in topics))

    def start_worker(self, name: str, step: Callable[[], Awaitable[object]], interval_s: float | None = None) -> None:
        """Run a periodic worker (booking, sending, syncing, deadlines) until close(). A worker
        on the default interval also runs as soon as this process commits new work
        (``wake_workers``), so the interval only bounds how late work from elsewhere is seen."""
        interval = self.settings.worker_interval_s if interval_s is None else interval_s
        wake = asyncio.Event() if interval_s is None else None
        if wake is not None:
            self._wakes.append(wake)
        self._workers.append(
            asyncio.create_task(run_periodically(name, step, interval, wake, self.after_write), name=name)
        )

    def wake_workers(self) -> None:
        """Work was just committed here (an event handled, a request served): look at once."""
        for wake in self._wakes:
            wake.set()

    def after_write(self) -> None:
        """Called once a transaction of this process has ended (a request served, a batch of
        events handled, a worker's pass): events it added go to the relay at once."""
        outbox = getattr(self, "outbox", None)  # not before open()
        if outbox is not None and outbox.take_written():
            self.relay.wake()

    def after_commit(self) -> None:
        self.after_write()
        self.wake_workers()

    def _relay_active(self, active: bool) -> None:
        # While this process relays, its own writes wake the relay in-process (no NOTIFY).
        self.outbox.notify_relay = not active

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._broker is not None:
            await self._broker.stop()
        if self._relay_task is not None:
            self._relay_task.cancel()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        if self._dlq_producer is not None:
            await self._dlq_producer.stop()
        if getattr(self, "http", None) is not None:
            await self.http.aclose()
        for store in self._stores.values():
            await store.close()
        if getattr(self, "pool", None) is not None:
            await self.pool.close()
        shutdown_tracing()


Wiring = Callable[[FastAPI, ServiceRuntime[Any]], Awaitable[None]]


def service_app(
    settings: Settings,
    migrations_dir: Path,
    *,
    title: str,
    description: str,
    router: APIRouter,
    wire: Wiring,
    clock: Clock | None = None,
    secrets: tuple[str, ...] = (),
    resolvers: dict[str, Resolver] | None = None,
    larger_bodies: dict[str, int] | None = None,
) -> FastAPI:
    """A service's ASGI app: the runtime opened at start-up, ``wire`` registering the service's
    handlers and workers, its topic consumed (shared/topics.py), the HTTP edges and routes installed, every
    route behind the access policy (``resolvers`` look up what its limits need); ``larger_bodies``
    names the paths that take bodies larger than ``max_body_bytes`` (uploads).
    Raises MissingSecret, naming the variables, when a secret in ``secrets`` is not set."""
    settings.require("kafka_password", *secrets)
    settings.provenance  # noqa: B018 - the event keys, checked at start (MissingSecret names what is missing)
    runtime = ServiceRuntime(settings, migrations_dir, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.open()
        app.state.runtime = runtime
        app.state.audit = AuditLog(runtime.pool, AnonymousRefusals(settings.audit_anonymous_per_minute))
        await wire(app, runtime)
        await runtime.consume(*runtime.topics)
        yield
        await runtime.close()

    app = FastAPI(
        title=title, version="1", lifespan=lifespan, description=description, dependencies=[Depends(authorize)]
    )
    install_edges(app, settings.service_name, settings.max_body_bytes, larger_bodies=larger_bodies)
    app.add_middleware(AfterWrites, runtime=runtime)
    app.include_router(router)
    app.include_router(operations.router)
    policy = Policy.load()
    app.state.access = AccessControl(
        settings.service_name,
        policy,
        TokenValidator(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.token_leeway_s,
            discovery_url=settings.oidc_discovery_url,
        ),
        resolvers or {},
        policy.quotas(settings.quota_default),
    )
    if missing := policy.missing(settings.service_name, api_routes(app)):
        log.error("access.routes_without_policy %s: refused until shared/access_policy.yaml covers them", missing)
    _document_access(app, policy, settings.service_name)
    return app


class AfterWrites:
    """After a request that may have written (any method but GET, HEAD, OPTIONS), the events
    its committed transaction added go to the relay at once."""

    def __init__(self, app, runtime: ServiceRuntime) -> None:
        self.app, self.runtime = app, runtime

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                self.runtime.after_write()


def _document_access(app: FastAPI, policy: Policy, service: str) -> None:
    """Each route's OpenAPI description says who may call it, from the policy itself."""
    for route in all_routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        lines = []
        for method in sorted((route.methods or set()) - {"HEAD"}):
            entry = policy.entry(service, method, route.path)
            if entry is None:
                lines.append("**Who may call:** nobody (no access policy: denied by default).")
            elif entry.public:
                lines.append("**Who may call:** anyone (public).")
            else:
                grants = ", ".join(
                    g.role if g.limit == "any" else f"{g.role} ({g.limit.replace('_', ' ')})" for g in entry.grants
                )
                lines.append(
                    f"**Who may call:** {grants}." + (f" {entry.why[0].upper()}{entry.why[1:]}." if entry.why else "")
                )
        route.description = "\n\n".join(filter(None, [route.description, *lines]))
