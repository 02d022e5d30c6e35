"""Typed settings from environment variables; a bad value fails at start with its name."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LGSP_", extra="ignore")

    service_name: str = Field("lgsp", description="One identity per service: process, OTel service, consumer group, schema")
    kafka_bootstrap: str = Field(
        "127.0.0.1:59092", validation_alias=AliasChoices("LGSP_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: str = Field(
        "postgresql://lgsp@127.0.0.1:55432/lgsp", validation_alias=AliasChoices("DATABASE_URL", "LGSP_DATABASE_URL")
    )
    topic_prefix: str = Field("lgsp", description="Prefix of every topic name; tests use their own")
    schema_prefix: str = Field("", description="Prefix of every service schema; tests use their own")
    http_host: str = "127.0.0.1"
    http_port: int = 0
    public_url: str | None = Field(None, description="How others reach this service (webhook callbacks); default http://host:port")
    max_body_bytes: int = Field(1_000_000, description="Largest HTTP request body accepted")
    state_dir: Path = REPO_ROOT / ".lgsp"
    trace_dir: Path | None = Field(None, description="Where spans are written as JSON lines when no OTLP endpoint is set")
    otlp_endpoint: str | None = Field(None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "LGSP_OTLP_ENDPOINT"))
    handler_attempts: int = Field(4, ge=1, description="Tries of a failing event before it is dead-lettered")
    retry_backoff_s: float = Field(0.2, ge=0, description="First retry delay; doubles each time")
    reference_variant: str = Field("three_level", description="Agency tree and catalogue: three_level or two_level")
    scheduler_interval_s: float = Field(30.0, gt=0, description="How often routing looks for late dossiers")
    apology_extension_days: float = Field(2.0, gt=0, description="Working days asked for in an apology")
    backdate_max_days: int = Field(30, ge=0, description="How far back a counter may record a receipt time")
    # edges to third parties (simulators on loopback in tests and the demo)
    carrier_url: str = "http://127.0.0.1:8091"
    carrier_webhook_secret: str = Field("local-carrier-secret", description="HMAC key of the carrier's webhooks")
    webhook_max_skew_s: int = Field(300, description="Webhooks older or newer than this are refused as replays")
    sms_url: str = "http://127.0.0.1:8092"
    zalo_url: str = "http://127.0.0.1:8092"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    portal_url: str = "http://127.0.0.1:8093"
    portal_client_id: str = "lgsp-ninh-binh"
    portal_client_secret: str = "local-portal-secret"
    quiet_hours: str = Field("21:00-07:00", description="No non-urgent message in this local time window")
    urgent_events: str = Field("", description="Comma-separated event types sent even in quiet hours")
    rate_limit_per_hour: int = Field(6, ge=1, description="Messages per recipient per hour; more wait")
    worker_interval_s: float = Field(0.5, gt=0, description="Poll interval of booking, sending and sync workers")
    consume_batch: int = Field(200, ge=1, description="Most records handled in one transaction")
    relay_batch: int = Field(500, ge=1)
    relay_idle_s: float = Field(1.0, gt=0, description="Outbox poll interval when no NOTIFY arrives")

    @property
    def schema(self) -> str:
        return f"{self.schema_prefix}{self.service_name}"

    @property
    def traces_path(self) -> Path:
        return self.trace_dir or self.state_dir / "traces"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"
