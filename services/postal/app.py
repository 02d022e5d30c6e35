"""Postal's wiring: its handlers, its booking worker, its HTTP routes.
``python -m services.postal`` runs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.postal import handlers
from services.postal.api import router
from services.postal.settings import PostalSettings
from shared.events import DossierReceived, DossierResolved, PickupRequested
from shared.runtime import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8083


async def wire(app: FastAPI, runtime: ServiceRuntime) -> None:
    s = runtime.settings

    async def on_event(event, envelope, conn):
        await handlers.on_event(event, envelope, conn, now=runtime.clock.now())

    # only these concern the post; any other event is skipped before it is even parsed
    for event_type in (PickupRequested, DossierReceived, DossierResolved):
        runtime.consumer.on(event_type)(on_event)
    callback = f"{s.public_url or f'http://{s.http_host}:{s.http_port}'}/v1/carrier/webhooks"
    runtime.start_worker(
        "postal.booker",
        lambda: handlers.book_due(
            runtime.pool, runtime.outbox, runtime.http, s.carrier_url, callback, runtime.clock.now()
        ),
    )


def create_app(settings: PostalSettings | None = None) -> FastAPI:
    return service_app(
        settings or PostalSettings(service_name="postal", http_port=DEFAULT_PORT),
        MIGRATIONS,
        title="LGSP postal",
        description="BCCI shipments: pickups from home and results delivered by post.",
        router=router,
        wire=wire,
        secrets=("carrier_webhook_secret",),
    )
