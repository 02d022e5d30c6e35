"""Every topic the platform uses, declared in one place and created at start-up.

Events of one aggregate share a topic, keyed by the aggregate id, so Kafka keeps one
dossier's events in order across event types.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

if TYPE_CHECKING:
    from shared.kafka_access import KafkaAccess

from shared.services import BY_NAME, NAMES, consuming

SERVICES = consuming("dossier")  # the services that consume the dossier topic
ALL_SERVICES = NAMES  # every service with data: each has its dead-letter topic


@dataclass(frozen=True)
class Topic:
    name: str  # without the deployment prefix
    partitions: int
    description: str
    retention_ms: int = 7 * 24 * 3600 * 1000


DOSSIER = Topic("dossier", 6, "Every event of a dossier's life, key = dossier id")
DOCUMENT = Topic("document", 3, "Official documents between agencies, key = document id")


def dead_letter(service: str) -> Topic:
    return Topic(f"dlq.{service}", 1, f"Events {service} could not handle, with the reason", 30 * 24 * 3600 * 1000)


ALL_TOPICS: tuple[Topic, ...] = (DOSSIER, DOCUMENT, *(dead_letter(s) for s in ALL_SERVICES))


def consumed_topics(service: str) -> tuple[Topic, ...]:
    """What a service consumes (shared/services.py): the dossier topic, the document topic, or
    both: notify tells officials about late documents, routing follows the documents sent
    about a dossier."""
    return tuple(t for t in (DOSSIER, DOCUMENT) if t.name in BY_NAME[service].consumes)


def definitions(prefix: str = "lgsp", replication: int = 1) -> list[dict]:
    """The topics as data, for deploy/kafka/topics.json and for operators. With 3 replicas a
    write needs 2 in sync: one broker may be lost without losing an acknowledged event."""
    return [
        {
            "name": full_name(t, prefix),
            "partitions": t.partitions,
            "replication_factor": replication,
            "config": {"retention.ms": str(t.retention_ms), "min.insync.replicas": str(min(2, replication))},
            "description": t.description,
        }
        for t in ALL_TOPICS
    ]


def full_name(topic: Topic, prefix: str) -> str:
    return f"{prefix}.{topic.name}"


async def ensure_topics(kafka: KafkaAccess, prefix: str = "lgsp", replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Existing ones are left as they are."""
    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in ALL_TOPICS if full_name(t, prefix) not in existing]
        if not missing:
            return []
        wanted = {full_name(t, prefix) for t in missing}
        new = [
            NewTopic(
                name=d["name"],
                num_partitions=d["partitions"],
                replication_factor=d["replication_factor"],
                topic_configs=d["config"],
            )
            for d in definitions(prefix, replication)
            if d["name"] in wanted
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another process created them first
        return [n.name for n in new]
    finally:
        await admin.close()


async def require_topics(kafka: KafkaAccess, prefix: str, topics: tuple[Topic, ...], timeout_s: float = 60.0) -> None:
    """Wait until the topics a service uses exist. A service does not create topics (its
    principal may not): the stack, a deployment or the test session does, as the operator."""
    names = {full_name(t, prefix) for t in topics}
    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=15000)
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while missing := names - set(await admin.list_topics()):
            if loop.time() > deadline:
                raise RuntimeError(
                    f"topics {', '.join(sorted(missing))} do not exist or {kafka.username} may not see them; "
                    "create them first (lgsp stack start, or deploy/kafka/topics.json)"
                )
            await asyncio.sleep(1.0)
    finally:
        await admin.close()


def ensure_topics_sync(kafka: KafkaAccess, prefix: str = "lgsp", replication: int = 1) -> list[str]:
    return asyncio.run(ensure_topics(kafka, prefix, replication))
