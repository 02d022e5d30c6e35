"""Notify's wiring: its planning handler, its sending worker, its HTTP routes.
``python -m services.notify`` runs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notify import handlers
from services.notify.api import router
from services.notify.providers import providers
from services.notify.settings import NotifySettings
from shared.events import DocumentViewOverdue, DossierIdentityChecked
from shared.reference import load_reference
from shared.runtime import ServiceRuntime, service_app
from shared.staff import StaffDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8084
SEND_BATCH = 20


async def wire(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings = runtime.settings

    async def plan(events, conn):
        await handlers.plan_notifications(events, conn, settings=settings, now=runtime.clock.now())

    runtime.consumer.on_every_batch(plan)
    directory = StaffDirectory.load(settings.staff_directory)
    agencies = load_reference(settings.reference_variant).catalogue.agencies

    def name_of(code: str) -> str:
        agency = agencies.get(code)
        return agency.name if agency else code

    async def staff_must_look(event, envelope, conn):
        await handlers.tell_staff(
            event, envelope, conn, directory=directory, settings=settings, now=runtime.clock.now(), name_of=name_of
        )

    runtime.consumer.on(DocumentViewOverdue)(staff_must_look)
    runtime.consumer.on(DossierIdentityChecked)(staff_must_look)

    senders = providers(runtime.http, settings)

    async def send() -> bool:
        counts = await handlers.send_due(runtime.pool, senders, settings, runtime.clock, batch=SEND_BATCH)
        return counts["sent"] == SEND_BATCH  # a full batch: more may be waiting

    runtime.start_worker("notify.sender", send)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return service_app(
        settings or NotifySettings(service_name="notify", http_port=DEFAULT_PORT),
        MIGRATIONS,
        title="LGSP notify",
        description="Tells citizens about their dossiers by SMS, Zalo and e-mail.",
        router=router,
        wire=wire,
        secrets=("pd_keys", "pd_lookup_key"),
    )
