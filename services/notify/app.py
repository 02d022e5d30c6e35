"""Notify's wiring. ``python -m services.notify`` runs it."""

from __future__ import annotations

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
SEND_BATCH = 20


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
        senders = providers(http, settings)

        async def send() -> bool:
            counts = await handlers.send_due(runtime.pool, senders, settings, batch=SEND_BATCH)
            return counts["sent"] == SEND_BATCH  # a full batch: more may be waiting

        runtime.start_worker("notify.sender", send)
        yield
        await runtime.close()
        await http.aclose()

    app = FastAPI(title="LGSP notify", version="1", lifespan=lifespan,
                  description="Tells citizens about their dossiers by SMS, Zalo and e-mail.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
