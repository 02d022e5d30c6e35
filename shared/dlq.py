"""Dead-letter topics: read what a service parked, and re-drive it to where it came from.

A re-driven record goes back to its source topic with its original headers (the ``dlq_*``
ones removed). Services that already handled it skip it through their inbox; the service
that failed it gets another chance, e.g. after a fix is deployed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topic_reader import all_records, partitions, read_records
from shared.topics import dead_letter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    source: str
    event_type: str
    event_id: str
    reason: str
    failed_at: str


def _describe(rec) -> DeadLetter:
    h = {k: v.decode("utf-8", "replace") for k, v in (rec.headers or ())}
    return DeadLetter(
        partition=rec.partition, offset=rec.offset,
        source=f"{h.get('dlq_source_topic', '?')}[{h.get('dlq_source_partition', '?')}]@{h.get('dlq_source_offset', '?')}",
        event_type=h.get("ce_type", "-"), event_id=h.get("ce_id", "-"),
        reason=h.get("dlq_reason", "-"), failed_at=h.get("dlq_failed_at", "-"),
    )


async def list_dead_letters(settings: Settings, service: str) -> list[DeadLetter]:
    records = await all_records(settings.kafka, settings.topic(dead_letter(service).name))
    return [_describe(rec) for rec in records]


async def redrive(settings: Settings, service: str) -> int:
    """Re-publish every dead letter not re-driven before; returns how many were sent.

    Progress is a committed offset of the ``<service>.redrive`` group, so running it twice
    does not send the same dead letter twice.
    """
    topic = settings.topic(dead_letter(service).name)
    tps = await partitions(settings.kafka, topic)
    consumer = AIOKafkaConsumer(
        **settings.kafka.options(), group_id=f"{settings.schema_prefix}{service}.redrive",
        enable_auto_commit=False,
    )
    producer = kafka_producer(settings.kafka)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        starts = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        async for tp, rec in read_records(consumer, starts):
            headers = [(k, v) for k, v in (rec.headers or ()) if not k.startswith("dlq_")]
            source = dict(rec.headers or ()).get("dlq_source_topic", b"").decode()
            if not source:
                log.warning("dlq.skip offset=%d: no source topic header", rec.offset)
            else:
                await producer.send_and_wait(source, value=rec.value, key=rec.key, headers=headers)
                sent += 1
            await consumer.commit({tp: rec.offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return sent
