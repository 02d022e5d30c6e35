"""The operations routes every service serves for its operators (and the console): how far
behind its consumer is, what its outbox still has to publish, and its dead letters, with a
re-drive. A re-drive changes state, so the audit log records who asked for it."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from shared import dlq
from shared.topic_reader import partitions

router = APIRouter(prefix="/v1/operations", tags=["operations"])


class PartitionLag(BaseModel):
    topic: str
    partition: int
    committed: int
    end: int
    lag: int


class OperationsStatus(BaseModel):
    service: str
    consumer_lag: int = Field(description="Events on the topic this service consumes that it has not handled yet")
    partitions: list[PartitionLag]
    outbox_pending: int = Field(description="Events written but not yet published to Kafka")
    dead_letters_pending: int = Field(description="Dead letters not re-driven yet")
    third_parties: dict[str, dict] = Field(
        default_factory=dict, description="The third parties this service calls and how they stand (circuit breakers)"
    )


async def consumer_lag(settings, consumed) -> list[PartitionLag]:
    """End offset minus the service's committed offset, per partition of the topics it consumes."""
    tps = [tp for topic in consumed for tp in await partitions(settings.kafka, settings.topic(topic.name))]
    consumer = AIOKafkaConsumer(**settings.kafka.options(), group_id=settings.schema, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        lags = []
        for tp in tps:
            committed = (await consumer.committed(tp)) or 0
            lags.append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed,
                    end=ends[tp],
                    lag=max(0, ends[tp] - committed),
                )
            )
        return lags
    finally:
        await consumer.stop()


@router.get("", response_model=OperationsStatus)
async def status(request: Request):
    rt = request.app.state.runtime
    lags = await consumer_lag(rt.settings, rt.topics)
    return OperationsStatus(
        service=rt.settings.service_name,
        consumer_lag=sum(p.lag for p in lags),
        partitions=lags,
        outbox_pending=await rt.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"),
        dead_letters_pending=await dlq.pending_count(rt.settings, rt.settings.service_name),
        third_parties={name: state() for name, state in rt.third_parties.items()},
    )


@router.get("/dead-letters")
async def dead_letters(
    request: Request, limit: int = Query(100, ge=1, le=1000, description="At most this many, oldest first")
):
    """Dead letters not re-driven yet, with the reason each was parked."""
    settings = request.app.state.runtime.settings
    letters = await dlq.list_dead_letters(settings, settings.service_name, pending_only=True, limit=limit)
    return {"service": settings.service_name, "pending": [letter.__dict__ for letter in letters]}


@router.post("/dead-letters/redrive")
async def redrive(request: Request):
    """Sends every pending dead letter back to its source topic, once. A letter that fails
    again is parked again, as a new dead letter with its new reason."""
    settings = request.app.state.runtime.settings
    return {"service": settings.service_name, "redriven": await dlq.redrive(settings, settings.service_name)}
