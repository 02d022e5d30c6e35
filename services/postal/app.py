"""Postal's wiring. ``python -m services.postal`` runs it."""

from __future__ import annotations

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
        callback = f"{settings.public_url or f'http://{settings.http_host}:{settings.http_port}'}/v1/carrier/webhooks"
        runtime.start_worker("postal.booker", lambda: handlers.book_due(
            runtime.pool, runtime.outbox, http, settings.carrier_url, callback))
        yield
        await runtime.close()
        await http.aclose()

    app = FastAPI(title="LGSP postal", version="1", lifespan=lifespan,
                  description="BCCI shipments: pickups from home and results delivered by post.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
