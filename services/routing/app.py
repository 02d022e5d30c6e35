"""Routing's wiring: its handlers, its deadline scheduler, its HTTP routes.
``python -m services.routing`` runs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.routing import handlers
from services.routing.api import ROUTES_KEPT, dossier_resource, router
from services.routing.scheduler import scheduler_pass
from services.routing.settings import RoutingSettings
from shared.recent import Recent
from shared.reference import load_reference
from shared.runtime import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8082


async def wire(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    reference = app.state.reference = load_reference(settings.reference_variant)
    app.state.route_agencies = Recent(ROUTES_KEPT)  # a dossier's route is fixed: its agencies are kept
    handlers.register(runtime.consumer, runtime.outbox, reference, runtime.clock)
    runtime.start_worker(
        "routing.scheduler",
        lambda: scheduler_pass(settings, runtime.pool, runtime.outbox, reference, runtime.clock),
        settings.scheduler_interval_s,
    )


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    settings = settings or RoutingSettings(service_name="routing", http_port=DEFAULT_PORT)
    return service_app(
        settings,
        MIGRATIONS,
        title="LGSP routing",
        description="Moves each dossier through its workflow across agencies and levels.",
        router=router,
        wire=wire,
        resolvers={"dossier": dossier_resource},
        larger_bodies={"/v1/files": settings.file_max_bytes},
    )
