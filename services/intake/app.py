"""Intake's wiring: the runtime, its HTTP routes. ``python -m services.intake`` runs it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from shared.http import install_edges
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.reference import load_reference
from shared.events import ShipmentProgressed
from shared.topics import DOSSIER
from services.intake import handlers, portal
from services.intake.api import router

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8081


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="intake", http_port=DEFAULT_PORT)
    runtime = ServiceRuntime(settings, MIGRATIONS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.reference = load_reference(settings.reference_variant)
        await runtime.open()
        app.state.runtime = runtime
        async def record_history(event, envelope, conn):
            await handlers.record_history(event, envelope, conn, ref=app.state.reference)

        runtime.consumer.on_every_event(record_history)

        @runtime.consumer.on(ShipmentProgressed)
        async def pickup_arrived(event, envelope, conn):
            await handlers.receive_picked_up(event, conn, outbox=runtime.outbox, ref=app.state.reference, settings=settings)

        await runtime.consume(DOSSIER)
        http = httpx.AsyncClient(timeout=10)
        client = portal.PortalClient(http, settings.portal_url, settings.portal_client_id, settings.portal_client_secret)
        runtime.start_worker("portal.sync", lambda: portal.sync_due(runtime.pool, client))
        yield
        await runtime.close()
        await http.aclose()

    app = FastAPI(title="LGSP intake", version="1", lifespan=lifespan,
                  description="Takes dossiers from portals and one-stop counters.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
