"""Dead-letter topics: read what a service parked, and re-drive it to where it came from.

A re-driven record goes back to its source topic with its original headers (the ``dlq_*``
ones removed) and one more, ``lgsp_redriven_for``: the consumer that parked it. Only that
consumer takes it again (e.g. after a fix is deployed); the others skip it.

How far a service's dead letters were re-driven is the committed offset of its re-drive
group, so "pending" dead letters are those after it. The operator's CLI (``lgsp dlq``) and
each service's operations routes (the console's re-drive button) share that progress.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import TopicAuthorizationFailedError

from shared.kafka_access import redrive_group
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topic_reader import partitions, read_records
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
        partition=rec.partition,
        offset=rec.offset,
        source=f"{h.get('dlq_source_topic', '?')}[{h.get('dlq_source_partition', '?')}]@{h.get('dlq_source_offset', '?')}",
        event_type=h.get("ce_type", "-"),
        event_id=h.get("ce_id", "-"),
        reason=h.get("dlq_reason", "-"),
        failed_at=h.get("dlq_failed_at", "-"),
    )


def _redrive_consumer(settings: Settings, service: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **settings.kafka.options(), group_id=redrive_group(settings.schema_prefix, service), enable_auto_commit=False
    )


async def list_dead_letters(
    settings: Settings, service: str, pending_only: bool = False, limit: int | None = None
) -> list[DeadLetter]:
    """A service's dead letters, oldest first; ``pending_only``: those not re-driven yet."""
    tps = await partitions(settings.kafka, settings.topic(dead_letter(service).name))
    consumer = _redrive_consumer(settings, service)
    await consumer.start()
    try:
        starts = {tp: ((await consumer.committed(tp)) or 0) if pending_only else 0 for tp in tps}
        letters = []
        async for _, rec in read_records(consumer, starts):
            letters.append(_describe(rec))
            if limit is not None and len(letters) >= limit:
                break
        return letters
    finally:
        await consumer.stop()


async def pending_count(settings: Settings, service: str) -> int:
    """How many dead letters wait to be re-driven, without reading them."""
    tps = await partitions(settings.kafka, settings.topic(dead_letter(service).name))
    consumer = _redrive_consumer(settings, service)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        pending = 0
        for tp in tps:
            pending += max(0, ends[tp] - ((await consumer.committed(tp)) or 0))
        return pending
    finally:
        await consumer.stop()


REDRIVEN_FOR = "lgsp_redriven_for"  # header of a re-driven record: the consumer group it is meant for


async def redrive(settings: Settings, service: str) -> int:
    """Re-publish every dead letter not re-driven before; returns how many were sent.

    Progress is a committed offset of the service's re-drive group, so running it twice
    does not send the same dead letter twice.
    """
    tps = await partitions(settings.kafka, settings.topic(dead_letter(service).name))
    consumer = _redrive_consumer(settings, service)
    producer = kafka_producer(settings.kafka)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        starts = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        async for tp, rec in read_records(consumer, starts):
            # only the consumer that parked it takes it again: the others of the source topic
            # handled (or parked) the original already, and would park a poison record again
            # (each re-drive multiplying every service's dead letters)
            headers = [(k, v) for k, v in (rec.headers or ()) if not k.startswith("dlq_") and k != REDRIVEN_FOR]
            headers.append((REDRIVEN_FOR, dict(rec.headers or ()).get("dlq_consumer", b"")))
            source = dict(rec.headers or ()).get("dlq_source_topic", b"").decode()
            if not source:
                log.warning("dlq.skip offset=%d: no source topic header", rec.offset)
            else:
                try:
                    await producer.send_and_wait(source, value=rec.value, key=rec.key, headers=headers)
                    sent += 1
                except TopicAuthorizationFailedError:
                    # a record of a topic this service only reads (routing refused a document's
                    # link to a dossier): it stays in the dead-letter topic for the operator to
                    # read; only the producer of that topic could send it back
                    log.warning("dlq.skip offset=%d: %s may not write %s", rec.offset, service, source)
            await consumer.commit({tp: rec.offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return sent
