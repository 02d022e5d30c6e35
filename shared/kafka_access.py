"""Who a process is on Kafka, and what each principal may do there.

Every client authenticates with SASL/SCRAM-SHA-512 as its own principal: each service as its
name (``intake``, ``routing``, ``postal``, ``notify``), the operator's tools (``lgsp dlq``, the
stack, the tests' readers, bench and chaos) as ``lgsp``. The broker's own inter-broker identity
is ``broker`` (PLAIN, configured in the broker), used only to create the SCRAM users.

What each service may do is ``service_acls``: read and write the topic it consumes (the dossier
topic, or the document topic for ``documents``), write and read
its own dead-letter topic (an operator re-drives it through the service's HTTP API), read
through its own consumer group and its re-drive group; nothing else (deny by default, the
broker's StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``). The operator
principal is a super user of the local stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.topics import ALL_SERVICES, DOSSIER, consumed_topics, dead_letter
from shared.topics import SERVICES as DOSSIER_SERVICES

SERVICE_PRINCIPALS = ALL_SERVICES
OPERATOR = "lgsp"
BROKER = "broker"
MECHANISM = "SCRAM-SHA-512"


def redrive_group(schema_prefix: str, service: str) -> str:
    """The consumer group whose committed offsets say how far a service's dead letters were re-driven."""
    return f"{schema_prefix}{service}.redrive"


def local_password(principal: str) -> str:
    """The local stack's public password of a principal (LGSP_PROFILE=local only)."""
    return f"local-kafka-{principal}"


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    username: str
    password: str

    @property
    def servers(self) -> list[str]:
        """``host:port`` of each broker to bootstrap from (``bootstrap`` is comma-separated)."""
        return [h.strip() for h in self.bootstrap.split(",") if h.strip()]

    def options(self) -> dict:
        """Keyword arguments for aiokafka's producers, consumers and admin client."""
        return {
            "bootstrap_servers": self.servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }

    def broker_security(self):
        """The same identity for FastStream's KafkaBroker."""
        from faststream.security import SASLScram512

        return SASLScram512(username=self.username, password=self.password)

    def __repr__(self) -> str:  # never print the password
        return f"KafkaAccess({self.bootstrap}, user={self.username})"


@dataclass(frozen=True)
class Grant:
    """One access right: ``principal`` may do ``operations`` on a literal resource."""

    principal: str
    resource: str  # "topic" or "group"
    name: str
    operations: tuple[str, ...]


def service_acls(topic_prefix: str, schema_prefix: str) -> list[Grant]:
    """The rights of every service in one namespace (the topics ``<topic_prefix>.*`` and the
    consumer groups ``<schema_prefix><service>``)."""
    grants = []
    for service in SERVICE_PRINCIPALS:
        # a dossier service that also reads the document topic (notify) may not write to it
        grants += [
            Grant(
                service,
                "topic",
                f"{topic_prefix}.{topic.name}",
                ("READ", "DESCRIBE")
                if service in DOSSIER_SERVICES and topic is not DOSSIER
                else ("READ", "WRITE", "DESCRIBE"),
            )
            for topic in consumed_topics(service)
        ]
        grants += [
            Grant(service, "topic", f"{topic_prefix}.{dead_letter(service).name}", ("WRITE", "READ", "DESCRIBE")),
            Grant(service, "group", f"{schema_prefix}{service}", ("READ", "DESCRIBE")),
            Grant(service, "group", redrive_group(schema_prefix, service), ("READ", "DESCRIBE")),
        ]
    return grants


def apply_access(bootstrap: str, broker_password: str, users: dict[str, str], grants: list[Grant]) -> None:
    """As the broker's own identity: create (or update) the SCRAM users and the grants.
    Idempotent: running it again changes nothing. kafka-python is used here because aiokafka
    has no admin calls for SCRAM users and ACLs."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        KafkaAdminClient,
        ResourcePattern,
        ResourceType,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=BROKER,
        sasl_plain_password=broker_password,
        request_timeout_ms=15000,
        client_id="lgsp-access",
    )
    try:
        if users:
            admin.alter_user_scram_credentials(
                [
                    UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, password, iterations=4096)
                    for name, password in users.items()
                ]
            )
        kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
        acls = [
            ACL(
                principal=f"User:{g.principal}",
                host="*",
                operation=ACLOperation[op],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(kinds[g.resource], g.name),
            )
            for g in grants
            for op in g.operations
        ]
        if acls:
            result = admin.create_acls(acls)
            failed = result.get("failed") if isinstance(result, dict) else None
            if failed:
                raise RuntimeError(f"could not create Kafka ACLs: {failed}")
    finally:
        admin.close()
