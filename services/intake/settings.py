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
    population_url: str = Field(
        "",
        max_length=300,
        description="The national data-sharing platform's citizen check; empty: no identity check at receipt",
    )
    population_client_id: str = Field("lgsp-ninh-binh", max_length=100)
    population_client_secret: SecretStr | None = Field(None, description="Our OAuth2 client secret there (secret)")
    population_signing_key: SecretStr | None = Field(
        None, description="Our Ed25519 request-signing key, a 32-byte seed in base64 (secret)"
    )
    population_timeout_s: float = Field(
        2.0, ge=0.1, le=30, description="How long a receipt waits for the database before it is 'to be confirmed'"
    )
    population_recheck_s: float = Field(
        60, ge=0.5, le=86_400, description="How often dossiers 'to be confirmed' are checked again"
    )
    population_breaker_failures: int = Field(5, ge=1, le=1000, description="Failures in a row that open the circuit")
    population_breaker_open_s: float = Field(
        30, ge=0.5, le=3600, description="How long an open circuit refuses calls before one probe"
    )
    payment_url: str = Field(
        "", max_length=300, description="The online payment platform; empty: fees are not paid online"
    )
    payment_merchant_id: str = Field("lgsp-ninh-binh", max_length=100)
    payment_secret: SecretStr | None = Field(None, description="Our HMAC secret at the payment platform (secret)")
    payment_poll_s: float = Field(
        60, ge=0.5, le=86_400, description="How long a pending order waits for its callback before it is polled"
    )
    files_gc_interval_s: float = Field(3600, ge=1, description="How often the collector of unreferenced files runs")


SETTINGS = IntakeSettings
