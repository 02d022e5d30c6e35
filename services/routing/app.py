"""Routing's wiring. ``python -m services.routing`` runs it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from shared.http import install_edges
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.topics import DOSSIER
from services.routing import handlers
from shared.reference import load_reference
from services.routing.api import router
from services.routing.scheduler import scheduler_pass

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8082


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="routing", http_port=DEFAULT_PORT)
    runtime = ServiceRuntime(settings, MIGRATIONS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reference = load_reference(settings.reference_variant)
        app.state.reference = reference
        await runtime.open()
        handlers.register(runtime.consumer, runtime.outbox, reference)
        await runtime.consume(DOSSIER)
        app.state.runtime = runtime
        runtime.start_worker("routing.scheduler", lambda: scheduler_pass(settings, runtime.pool, runtime.outbox, reference),
                             settings.scheduler_interval_s)
        yield
        await runtime.close()

    app = FastAPI(title="LGSP routing", version="1", lifespan=lifespan,
                  description="Moves each dossier through its workflow across agencies and levels.")
    install_edges(app, settings.service_name, settings.max_body_bytes)
    app.include_router(router)
    return app
