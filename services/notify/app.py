"""Notify's wiring. ``python -m services.notify`` runs it."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from shared.http import install_edges
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.topics import DOSSIER
from services.notify import handlers
from services.notify.api import router
from services.notify.providers import providers

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8084
log = logging.getLogger(__name__)


async def run_sender(settings: Settings, pool, senders) -> None:
    while True:
        try:
            counts = await handlers.send_due(pool, senders, settings)
            if counts["sent"] == 20:
                continue  # more may be waiting
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next pass retries
            log.warning("notify.sender_error %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(settings.worker_interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="notify", http_port=DEFAULT_PORT)
    runtime = ServiceRuntime(settings, MIGRATIONS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.open()
        app.state.runtime = runtime

        async def plan(event, envelope, conn):
            await handlers.plan_notifications(event, envelope, conn, settings=settings)

        runtime.consumer.on_every_event(plan)
        await runtime.consume(DOSSIER)
        http = httpx.AsyncClient(timeout=10)
        sender = asyncio.create_task(run_sender(settings, runtime.pool, providers(http, settings)))
        yield
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await http.aclose()
        await runtime.close()

    app = FastAPI(title="LGSP notify", version="1", lifespan=lifespan,
                  description="Tells citizens about their dossiers by SMS, Zalo and e-mail.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
