"""The documents service's wiring: receiving on the document topic, its HTTP routes.
``python -m services.documents`` runs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.documents import domain, handlers
from services.documents.api import document_resource, router
from services.documents.settings import DocumentsSettings
from services.documents.signatures import Trust
from shared.events import DocumentSent
from shared.reference import load_reference
from shared.runtime import ServiceRuntime, service_app
from shared.staff import StaffDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PORT = 8086
FLAG_BATCH = 200
AXIS_BATCH = 20


def load_trust(settings: DocumentsSettings) -> Trust:
    """What the receivers trust, from LGSP_DOCUMENTS_PKI_DIR (default <state_dir>/pki)."""
    folder = settings.documents_pki_dir or settings.state_dir / "pki"
    root = folder / "root.pem"
    if not root.is_file():
        raise RuntimeError(
            f"no trust root at {root}: set LGSP_DOCUMENTS_PKI_DIR (a test one: `lgsp pki --out {folder}`)"
        )
    others = sorted(p for p in folder.glob("*.pem") if p.name != "root.pem")
    return Trust.from_pem(
        [root.read_bytes()],
        [p.read_bytes() for p in others],
        [p.read_bytes() for p in sorted((folder / "crls").glob("*.crl"))],
    )


async def wire(app: FastAPI, runtime: ServiceRuntime) -> None:
    trust = load_trust(runtime.settings)
    reference = app.state.reference = load_reference(runtime.settings.reference_variant)
    app.state.staff = StaffDirectory.load(runtime.settings.staff_directory)  # the report names who never read

    agencies = reference.catalogue.agencies

    @runtime.consumer.on(DocumentSent)
    async def receive(event, envelope, conn):
        external = frozenset(domain.split_recipients(event.recipients, agencies)[0])
        await handlers.receive(
            event,
            conn,
            runtime.outbox,
            trust,
            reference.calendar,
            runtime.clock.now(),
            external,
            runtime.files("documents"),
        )

    async def flag_pass() -> bool:
        return await handlers.flag_unviewed(runtime.pool, runtime.outbox, runtime.clock.now()) == FLAG_BATCH

    runtime.start_worker("documents.view_deadlines", flag_pass, runtime.settings.scheduler_interval_s)
    settings = runtime.settings

    async def axis_pass() -> bool:
        now = runtime.clock.now()
        taken = await handlers.push_to_axis(
            runtime.pool, runtime.files("documents"), runtime.http, settings.axis_url, settings.secret("axis_key"), now
        )
        await handlers.poll_axis(
            runtime.pool, runtime.outbox, runtime.http, settings.axis_url, settings.secret("axis_key"), now
        )
        return taken == AXIS_BATCH

    runtime.start_worker("documents.axis", axis_pass)


def create_app(settings: DocumentsSettings | None = None) -> FastAPI:
    settings = settings or DocumentsSettings(service_name="documents", http_port=DEFAULT_PORT)
    return service_app(
        settings,
        MIGRATIONS,
        title="LGSP documents",
        # a signed PDF is larger than any JSON body: only the upload takes one
        larger_bodies={"/v1/documents/files": settings.documents_max_file_bytes},
        description="Official documents between agencies: signed twice, checked on arrival, followed to done.",
        router=router,
        wire=wire,
        resolvers={"document": document_resource},
        secrets=("axis_key",),
    )
