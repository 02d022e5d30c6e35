"""Typed settings from environment variables; a bad value fails at start with its name."""

from __future__ import annotations

import base64
import binascii
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kafka_access import KafkaAccess, local_password
from shared.personal_data import PersonalDataKeys, local_keys
from shared.provenance import PRODUCERS, Provenance, local_public_keys, local_seed

REPO_ROOT = Path(__file__).resolve().parent.parent

# The local stack's secrets: public, known to its simulators, usable only with LGSP_PROFILE=local.
LOCAL_SECRETS = {
    "carrier_webhook_secret": "local-carrier-secret",
    "portal_client_secret": "local-portal-secret",
    "axis_key": "local-axis-secret",
    "population_client_secret": "local-population-secret",
    "payment_secret": "local-payment-secret",
    # the connector's Ed25519 signing key (32-byte seed, base64); the simulator knows its public half
    "population_signing_key": "bGdzcC1sb2NhbC1wb3B1bGF0aW9uLXNpZ25pbmcta2U=",
    "pd_keys": local_keys()[0],
    "pd_lookup_key": local_keys()[1],
}


class MissingSecret(ValueError):
    """A secret a service needs is not set; the message names the environment variable."""


def env_name(field: str) -> str:
    return f"LGSP_{field.upper()}"


def _file_store(url: str, prefix: str, keys: tuple[str | None, str | None]):
    from shared.files import open_store

    return open_store(url, prefix, *keys)


class Settings(BaseSettings):
    """What every service reads. Each service's own settings extend these in
    ``services/<name>/settings.py``; ``settings_class`` finds them by the service's name."""

    model_config = SettingsConfigDict(env_prefix="LGSP_", extra="ignore")

    service_name: str = Field(
        "lgsp", description="One identity per service: process, OTel service, consumer group, schema"
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:59092", validation_alias=AliasChoices("LGSP_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: str = Field(
        "postgresql://lgsp@127.0.0.1:55432/lgsp", validation_alias=AliasChoices("DATABASE_URL", "LGSP_DATABASE_URL")
    )
    kafka_username: str | None = Field(None, description="This process's Kafka principal; default: the service's name")
    kafka_password: SecretStr | None = Field(None, description="Its SCRAM password (secret)")
    event_signing_key: SecretStr | None = Field(
        None,
        description="This service's Ed25519 seed (32 bytes, base64) that "
        "signs the events it emits (secret; shared/provenance.py)",
    )
    event_public_keys: str | None = Field(
        None,
        max_length=2000,
        description="Every producer's public event key: 'service:base64,…'; default on the local stack: the local ones",
    )
    topic_prefix: str = Field("lgsp", description="Prefix of every topic name; tests use their own")
    schema_prefix: str = Field("", description="Prefix of every service schema; tests use their own")
    http_host: str = "127.0.0.1"
    http_port: int = 0
    public_url: str | None = Field(
        None, description="How others reach this service (webhook callbacks); default http://host:port"
    )
    max_body_bytes: int = Field(1_000_000, description="Largest HTTP request body accepted")
    files_url: str | None = Field(
        None,
        max_length=500,
        description="The file store (shared/files.py): file:///path, default <state_dir>/files; or s3://bucket?endpoint=…",
    )
    file_max_bytes: int = Field(20_000_000, ge=1, le=1 << 30, description="Largest file one upload may store")
    s3_access_key: str | None = Field(None, max_length=200, description="The S3 API's access key (s3:// file store)")
    s3_secret_key: SecretStr | None = Field(None, description="The S3 API's secret key (secret)")
    state_dir: Path = REPO_ROOT / ".lgsp"
    trace_dir: Path | None = Field(
        None, description="Where spans are written as JSON lines when no OTLP endpoint is set"
    )
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "LGSP_OTLP_ENDPOINT")
    )
    handler_attempts: int = Field(4, ge=1, description="Tries of a failing event before it is dead-lettered")
    retry_backoff_s: float = Field(0.2, ge=0, description="First retry delay; doubles each time")
    reference_variant: str = Field("three_level", description="Agency tree and catalogue: three_level or two_level")
    scheduler_interval_s: float = Field(30.0, gt=0, description="How often routing looks for late dossiers")
    oidc_issuer: str = Field(
        "http://127.0.0.1:58080/realms/lgsp",
        description="The identity provider whose access tokens the services accept",
    )
    oidc_discovery_url: str | None = Field(
        None,
        description="Where to read the issuer's discovery document when "
        "the services reach it by another address; default: the issuer's own",
    )
    oidc_audience: str = Field("lgsp", max_length=200, description="The audience a token must name")
    token_leeway_s: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on a token's times")
    audit_anonymous_per_minute: int = Field(
        60,
        ge=0,
        le=100_000,
        description="Anonymous refusals written to the audit log one row each per "
        "minute and process; the rest are counted in one row",
    )
    quota_default: str | None = Field(
        None,
        pattern=r"^\d+(\.\d+)?(/\d+)?$",
        description="Requests a second per caller and burst, e.g. '50/200'; default: the access policy's",
    )
    staff_directory: Path = Field(
        REPO_ROOT / "shared/reference/identity/staff.json",
        description="Who notify tells at each agency about its late documents (officials, managers)",
    )
    profile: Literal["local", "deployed"] = Field(
        "deployed",
        description="'local' lets the local stack's built-in secrets stand in for unset ones; "
        "anywhere else every secret a service needs must be set",
    )
    pd_keys: SecretStr | None = Field(
        None, description="Keys sealing ID and phone numbers: 'kid:base64,…', the first seals"
    )
    pd_lookup_key: SecretStr | None = Field(
        None, description="Key of the hash that stands in for a sealed value in lookups"
    )
    worker_interval_s: float = Field(0.5, gt=0, description="Poll interval of booking, sending and sync workers")
    consume_batch: int = Field(200, ge=1, description="Most records handled in one transaction")
    consumer_session_timeout_ms: int = Field(
        6000,
        ge=6000,  # the broker's group.min.session.timeout.ms
        le=300_000,
        description="How long the group waits for a silent member (a crashed process) before its partitions "
        "move on, and before a restarted process can join: the broker's minimum, not the client's 10 s, so "
        "recovery is quicker; heartbeats go every third of it from a task of their own",
    )
    relay_batch: int = Field(500, ge=1)
    relay_idle_s: float = Field(1.0, gt=0, description="Outbox poll interval when no NOTIFY arrives")

    def secret(self, name: str) -> str:
        """The value of secret ``name``: as set, or in the local profile the local stack's own;
        MissingSecret naming the variable otherwise."""
        value = getattr(self, name)
        if value is not None and value.get_secret_value():
            return self._not_public(name, name, value.get_secret_value())
        if self.profile == "local" and name == "kafka_password":
            return local_password(self.kafka_principal)
        if self.profile == "local" and name in LOCAL_SECRETS:
            return LOCAL_SECRETS[name]
        raise MissingSecret(f"{env_name(name)} is not set (a secret has no default outside LGSP_PROFILE=local)")

    def _not_public(self, name: str, field: str, value: str) -> str:
        """``value`` of the setting ``field`` (secret ``name``, or its previous value), refused
        outside the local profile when it is the local stack's public one."""
        public = local_password(self.kafka_principal) if name == "kafka_password" else LOCAL_SECRETS.get(name)
        if self.profile != "local" and value == public:
            raise MissingSecret(
                f"{env_name(field)} is set to the local stack's public value; "
                f"set a real secret (only LGSP_PROFILE=local may use it)"
            )
        return value

    def secrets(self, name: str) -> list[str]:
        """The accepted values of a rotatable secret: the current one and, while it is being
        rotated, the previous one (neither may be the local stack's public value elsewhere)."""
        accepted = [self.secret(name)]
        previous = getattr(self, f"{name}_previous", None)
        if previous is not None and previous.get_secret_value():
            accepted.append(self._not_public(name, f"{name}_previous", previous.get_secret_value()))
        return accepted

    def require(self, *names: str) -> None:
        """Check at start that every secret a service needs is there; one error names them all."""
        problems = []
        for name in names:
            try:
                self.secrets(name)  # a rotated-out previous value too
            except MissingSecret as exc:
                problems.append(str(exc))
        if problems:
            raise MissingSecret("; ".join(problems))

    @cached_property
    def personal_data(self) -> PersonalDataKeys:
        """The keys that seal and open citizens' ID and phone numbers (shared/personal_data.py),
        parsed once: notify asks for them for every event and every message."""
        return PersonalDataKeys.parse(self.secret("pd_keys"), self.secret("pd_lookup_key"))

    @cached_property
    def provenance(self) -> Provenance:
        """Signs this service's events and checks the provenance of those it consumes. The local
        stack's keys come from the service names; elsewhere both settings are required."""
        if self.profile == "local":
            seed = local_seed(self.service_name) if self.event_signing_key is None else None
            public = self.event_public_keys or local_public_keys()
        else:
            seed, public = None, self.event_public_keys or ""
            if not public:
                raise MissingSecret("LGSP_EVENT_PUBLIC_KEYS is not set (every producer's public event key)")
        if seed is None and self.service_name in PRODUCERS:
            try:
                seed = base64.b64decode(self.secret("event_signing_key"), validate=True)
            except binascii.Error as exc:
                raise MissingSecret("LGSP_EVENT_SIGNING_KEY is not base64") from exc
            if self.profile != "local" and seed == local_seed(self.service_name):
                raise MissingSecret("LGSP_EVENT_SIGNING_KEY is the local stack's public one; set a real secret")
        return Provenance(self.service_name, seed, public)

    @property
    def kafka_principal(self) -> str:
        return self.kafka_username or self.service_name

    @property
    def kafka(self) -> KafkaAccess:
        """How this process reaches Kafka, as itself."""
        return KafkaAccess(self.kafka_bootstrap, self.kafka_principal, self.secret("kafka_password"))

    @property
    def schema(self) -> str:  # type: ignore[override]  # pydantic's deprecated schema() classmethod, unused here
        return f"{self.schema_prefix}{self.service_name}"

    @property
    def traces_path(self) -> Path:
        return self.trace_dir or self.state_dir / "traces"

    def file_store(self, kind: str):
        """One namespace of the file store (``dossiers``, ``documents``), under this
        deployment's schema prefix so that test runs sharing a bucket never meet."""
        secret = self.s3_secret_key.get_secret_value() if self.s3_secret_key else None
        return _file_store(
            self.files_url or f"file://{self.state_dir / 'files'}",
            f"{self.schema_prefix}{kind}",
            (self.s3_access_key, secret),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"


def settings_class(service_name: str) -> type[Settings]:
    """The settings of ``service_name`` (its own fields besides the shared ones), or the shared
    ones for a name that has none of its own (the tools: bench, chaos, demo)."""
    import importlib

    try:
        module = importlib.import_module(f"services.{service_name}.settings")
    except ModuleNotFoundError:
        return Settings
    return module.SETTINGS
