"""Intake's wiring: its handlers, its portal-sync worker, its HTTP routes.
``python -m services.intake`` runs it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.intake import files, handlers, payments, portal
from services.intake import population as identity
from services.intake.api import dossier_resource, pickup_resource, router
from services.intake.settings import IntakeSettings
from shared.breaker import CircuitBreaker
from shared.events import ShipmentProgressed
from shared.reference import load_reference
from shared.runtime import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8081


async def wire(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    reference = app.state.reference = load_reference(settings.reference_variant)

    async def follow_dossier(event, envelope, conn):
        await handlers.follow_dossier(
            event, envelope, conn, ref=reference, now=runtime.clock.now(), retention_days=settings.files_retention_days
        )

    runtime.consumer.on_every_event(follow_dossier)
    runtime.consumer.on_every_batch(handlers.record_history)

    @runtime.consumer.on(ShipmentProgressed)
    async def shipment_progressed(event, envelope, conn):
        await handlers.follow_shipment(event, conn, outbox=runtime.outbox, ref=reference, settings=settings)

    client = portal.PortalClient(
        runtime.http,
        settings.portal_url,
        settings.portal_client_id,
        settings.secret("portal_client_secret"),
        settings.personal_data,
    )
    runtime.start_worker("portal.sync", lambda: portal.sync_due(runtime.pool, client, runtime.clock.now()))
    app.state.population = None
    if settings.population_url:
        population = app.state.population = identity.PopulationClient(
            runtime.http,
            settings.population_url,
            settings.population_client_id,
            settings.secret("population_client_secret"),
            settings.secret("population_signing_key"),
            settings.population_timeout_s,
            CircuitBreaker(settings.population_breaker_failures, settings.population_breaker_open_s),
        )
        runtime.third_parties["population"] = population.state

        async def recheck() -> None:
            await identity.recheck_due(
                runtime.pool,
                population,
                runtime.outbox,
                settings.personal_data,
                runtime.clock.now(),
                every=timedelta(seconds=settings.population_recheck_s),
            )
            await identity.forget_finished(runtime.pool)

        runtime.start_worker("identity.recheck", recheck, settings.population_recheck_s)
    app.state.payments = None
    if settings.payment_url:
        callback = f"{settings.public_url or f'http://{settings.http_host}:{settings.http_port}'}/v1/payments/callback"
        pay = app.state.payments = payments.PaymentClient(
            runtime.http,
            settings.payment_url,
            settings.payment_merchant_id,
            settings.secret("payment_secret"),
            callback,
        )
        poll = timedelta(seconds=settings.payment_poll_s)
        runtime.start_worker(
            "payments", lambda: payments.work(runtime.pool, pay, runtime.outbox, reference, runtime.clock.now(), poll)
        )
    grace = timedelta(hours=settings.files_unbound_grace_hours)
    runtime.start_worker(
        "files.collect",
        lambda: files.collect(runtime.pool, runtime.files(), runtime.clock.now(), grace),
        settings.files_gc_interval_s,
    )


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings(service_name="intake", http_port=DEFAULT_PORT)
    return service_app(
        settings,
        MIGRATIONS,
        title="LGSP intake",
        description="Takes dossiers from portals and one-stop counters.",
        router=router,
        wire=wire,
        secrets=(
            "portal_client_secret",
            "pd_keys",
            "pd_lookup_key",
            *(("population_client_secret", "population_signing_key") if settings.population_url else ()),
            *(("payment_secret",) if settings.payment_url else ()),
        ),
        resolvers={"dossier": dossier_resource, "pickup": pickup_resource},
        larger_bodies={"/v1/files": settings.file_max_bytes},
    )
