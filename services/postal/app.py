"""Postal's wiring. ``python -m services.postal`` runs it."""

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
from services.postal import handlers
from services.postal.api import router

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8083
log = logging.getLogger(__name__)


async def run_booker(settings: Settings, runtime: ServiceRuntime, http: httpx.AsyncClient) -> None:
    callback = f"{settings.public_url or f'http://{settings.http_host}:{settings.http_port}'}/v1/carrier/webhooks"
    while True:
        try:
            await handlers.book_due(runtime.pool, runtime.outbox, http, settings.carrier_url, callback)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next pass retries
            log.warning("postal.booker_error %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(settings.worker_interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="postal", http_port=DEFAULT_PORT)
    runtime = ServiceRuntime(settings, MIGRATIONS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.open()
        app.state.runtime = runtime
        runtime.consumer.on_every_event(handlers.on_event)
        await runtime.consume(DOSSIER)
        http = httpx.AsyncClient(timeout=10)
        booker = asyncio.create_task(run_booker(settings, runtime, http))
        yield
        booker.cancel()
        await asyncio.gather(booker, return_exceptions=True)
        await http.aclose()
        await runtime.close()

    app = FastAPI(title="LGSP postal", version="1", lifespan=lifespan,
                  description="BCCI shipments: pickups from home and results delivered by post.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
