"""Reading a topic's records up to its current end, outside any consumer group: used by the
outbox relay's crash recovery, the dead-letter tools and the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.kafka_access import KafkaAccess


async def partitions(kafka: KafkaAccess, topic: str) -> list[TopicPartition]:
    producer = AIOKafkaProducer(**kafka.options())
    await producer.start()
    try:
        return [TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))]
    finally:
        await producer.stop()


async def read_records(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int]
) -> AsyncIterator[tuple[TopicPartition, ConsumerRecord]]:
    """Yield records of the given partitions from the given offsets to their end as of now."""
    consumer.assign(list(starts))
    ends = await consumer.end_offsets(list(starts))
    todo = set()
    for tp, offset in starts.items():
        if ends[tp] > offset:
            consumer.seek(tp, offset)
            todo.add(tp)
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=1000)
        for tp, records in batches.items():
            for rec in records:
                if rec.offset < ends[tp]:
                    yield tp, rec
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)


async def all_records(kafka: KafkaAccess, topic: str) -> list[ConsumerRecord]:
    """Every record of a topic from the beginning, in partition order."""
    tps = await partitions(kafka, topic)
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return [rec async for _, rec in read_records(consumer, {tp: 0 for tp in tps})]
    finally:
        await consumer.stop()
