"""Intake's own settings: receipt rules and the national portal it syncs to."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import Settings


class IntakeSettings(Settings):
    backdate_max_days: int = Field(30, ge=0, description="How far back a counter may record a receipt time")
    portal_url: str = "http://127.0.0.1:8093"
    portal_client_id: str = "lgsp-ninh-binh"
    portal_client_secret: SecretStr | None = Field(None, description="Our secret at the national portal")
    dossier_max_bytes: int = Field(100_000_000, ge=1, le=1 << 34, description="All of one dossier's files together")
    files_retention_days: int = Field(
        3650, ge=1, le=36_500, description="How long a finished dossier's files are kept (open ones: always)"
    )
    files_unbound_grace_hours: float = Field(
        24, ge=0.01, le=24 * 365, description="How long an upload no dossier names yet is kept before it is collected"
    )
    files_gc_interval_s: float = Field(3600, ge=1, description="How often the collector of unreferenced files runs")


SETTINGS = IntakeSettings
