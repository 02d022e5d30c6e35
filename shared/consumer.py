"""Consuming events with exactly-once effects.

Records arrive in batches. Each is decoded against the contract and dispatched by
``ce_type`` to the service's handlers; the batch is handled in one database transaction that
also records every event id in the inbox, so a redelivered event has no second effect. The
Kafka offsets are committed only after that transaction commits (FastStream acks after the
handler returns). If anything in a batch fails, it is redone one record at a time.

Failures:
- a record that breaks the contract (bad headers, bad JSON, wrong schema) or a handler's
  ``Rejected`` goes straight to the service's dead-letter topic with the reason;
- any other handler error is retried with backoff, then dead-lettered;
- the database or broker being unreachable is not the record's fault: it is retried until
  they return, so an outage never fills the dead-letter topic.
A dead-lettered record is acked, so a poison message never blocks its partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind, StatusCode

from shared.clock import Clock
from shared.dlq import REDRIVEN_FOR
from shared.events import EVENT_TYPES, ContractError, Envelope, EventData
from shared.settings import Settings
from shared.telemetry import context_from_headers, mask_personal_data, tracer
from shared.topics import Topic, dead_letter

log = logging.getLogger(__name__)

Handler = Callable[[EventData, Envelope, asyncpg.Connection], Awaitable[None]]
# Sees every new event of a transaction at once, in order, after the per-event handlers: for
# set-based writes (one statement for a batch's rows instead of one per event).
BatchHandler = Callable[[list[tuple[EventData, Envelope]], asyncpg.Connection], Awaitable[None]]

# The database or network is away: wait for it rather than blame the record.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


class Rejected(Exception):
    """A handler's verdict that this event can never be handled; dead-lettered without retry."""


async def _raw_body(msg) -> bytes:
    """FastStream would parse JSON before we see it; the contract check is ours to make."""
    return msg.body


class EventConsumer:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        dlq_producer: AIOKafkaProducer,
        clock: Clock,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._after_commit = after_commit or (lambda: None)  # e.g. wake the workers the handlers gave work
        self._clock = clock
        self._pool = pool
        self._dlq_producer = dlq_producer
        self._handlers: dict[str, Handler] = {}
        self._every: list[Handler] = []
        self._every_batch: list[BatchHandler] = []
        self.dead_lettered = 0

    def on(self, event_cls: type[EventData]) -> Callable[[Handler], Handler]:
        """Register the handler of one event type (one per type per service)."""

        def register(fn: Handler) -> Handler:
            if event_cls.ce_type in self._handlers:
                raise ValueError(f"{event_cls.ce_type} already has a handler")
            self._handlers[event_cls.ce_type] = fn
            return fn

        return register

    def on_every_event(self, fn: Handler) -> Handler:
        """Register a handler that also sees every known event (e.g. an audit timeline)."""
        self._every.append(fn)
        return fn

    def on_every_batch(self, fn: BatchHandler) -> BatchHandler:
        """Register a handler given every known event of a transaction at once (a whole
        batch, or one record when a batch is redone record by record)."""
        self._every_batch.append(fn)
        return fn

    def subscribe(self, broker: KafkaBroker, *topics: Topic) -> None:
        """One Kafka consumer for all the service's topics: one member of the group per
        process, so a start (or a restart after a crash) joins the group once. A consumer per
        topic made each start rebalance twice, the second join interrupting the first (about
        3 s more per start)."""
        names = [self._settings.topic(topic.name) for topic in topics]

        @broker.subscriber(
            *names,
            group_id=self._settings.schema,
            session_timeout_ms=self._settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=self._settings.consumer_session_timeout_ms // 3,
            # A new consumer group must see the topic's history, not only what comes next.
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_body,
            batch=True,
            max_records=self._settings.consume_batch,
            batch_timeout_ms=20,
            description=f"{self._settings.service_name} handles {', '.join(sorted(self._handlers)) or 'every event'}",
        )
        async def on_records(msg: KafkaMessage) -> None:
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            await self.process_batch(list(records))

    async def _prepare(self, record: ConsumerRecord):
        """Decode and check one record; dead-letter it when it breaks the contract.
        Returns (envelope, data, handlers), or None when there is nothing to do."""
        redriven_for = next((v for k, v in record.headers or () if k == REDRIVEN_FOR), None)
        if redriven_for is not None and redriven_for.decode("utf-8", "replace") != self._settings.schema:
            return None  # another service's dead letter sent back for it alone
        try:
            envelope = Envelope.from_record(record.headers, record.value)
        except ContractError as exc:
            await self._dead_letter(record, f"contract: {exc}")
            return None
        if envelope.type not in EVENT_TYPES:
            # A type nobody here knows: likely a newer producer; keep it for a re-drive.
            await self._dead_letter(record, f"contract: unknown event type {envelope.type!r}")
            return None
        handlers = ([self._handlers[envelope.type]] if envelope.type in self._handlers else []) + self._every
        if not handlers and not self._every_batch:
            return None  # a known type this service does not handle: not ours
        try:
            data = envelope.parse()
        except ContractError as exc:
            await self._dead_letter(record, f"contract: {exc}")
            return None
        if (refusal := self._settings.provenance.refusal(envelope)) is not None:
            # not from the service that owns the type, or not signed by it: nothing acts on it
            await self._dead_letter(record, f"provenance: {refusal}")
            return None
        return envelope, data, handlers

    async def process(self, record: ConsumerRecord) -> None:
        await self.process_batch([record])

    async def process_batch(self, records: list[ConsumerRecord]) -> None:
        """Fast path: the whole batch in one transaction (one commit, one offset commit).
        If anything in it fails, the batch is redone record by record, so one bad event
        is retried and dead-lettered alone and the others still take effect."""
        prepared = []
        for record in records:
            ready = await self._prepare(record)
            if ready is not None:
                prepared.append((record, *ready))
        if not prepared:
            return
        if len(prepared) > 1:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await self._apply(conn, prepared, attempt=1)
                self._after_commit()
                return
            except Exception as exc:  # noqa: BLE001 - fall back to one record at a time
                log.info("consumer.batch_fallback size=%d %s", len(prepared), type(exc).__name__)
        for item in prepared:
            await self._handle(item)
        self._after_commit()

    async def _apply(self, conn, items: list, attempt: int) -> None:
        """Record the events in the inbox (one statement) and run the handlers of those not
        seen before, each under a span in the event's own trace, then the batch handlers,
        all in the caller's transaction."""
        fresh = {
            r["event_id"]
            for r in await conn.fetch(
                'INSERT INTO inbox (handler, event_id, event_type, topic, partition, "offset") '
                "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[]) "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                self._settings.service_name,
                [e.id for _, e, _, _ in items],
                [e.type for _, e, _, _ in items],
                [r.topic for r, *_ in items],
                [r.partition for r, *_ in items],
                [r.offset for r, *_ in items],
            )
        }
        handled = []
        for record, envelope, data, handlers in items:
            if envelope.id not in fresh:
                log.info("consumer.duplicate_skipped event_id=%s type=%s", envelope.id, envelope.type)
                continue
            fresh.discard(envelope.id)  # a second copy in the same batch is a duplicate too
            handled.append((data, envelope))
            # a span per event even when only batch handlers see it: each service that took
            # the event shows in the dossier's trace (named and described as OpenTelemetry's
            # messaging conventions say a consumer's processing span is)
            with tracer("lgsp.consumer").start_as_current_span(
                f"{record.topic} process",
                kind=SpanKind.CONSUMER,
                context=context_from_headers({"traceparent": envelope.traceparent} if envelope.traceparent else {}),
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.consumer.group.name": self._settings.schema,
                    "lgsp.handlers": ",".join(h.__name__ for h in [*handlers, *self._every_batch]),
                    "messaging.message.id": envelope.id,
                    "cloudevents.event_type": envelope.type,
                    "lgsp.attempt": attempt,
                    "messaging.kafka.offset": record.offset,
                },
            ) as span:
                try:
                    for handler in handlers:
                        await handler(data, envelope, conn)
                except Exception as exc:
                    span.set_status(StatusCode.ERROR, type(exc).__name__)
                    raise
        if handled:
            for batch_handler in self._every_batch:
                await batch_handler(handled, conn)

    async def _handle(self, item: tuple) -> None:
        record, envelope = item[0], item[1]
        s = self._settings
        attempt, infra_delay = 0, s.retry_backoff_s
        while True:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await self._apply(conn, [item], attempt + 1)
                return
            except Rejected as exc:
                await self._dead_letter(record, f"rejected: {exc}")
                return
            except INFRASTRUCTURE_ERRORS as exc:
                log.warning(
                    "consumer.infrastructure_unavailable %s; retrying in %.1fs", type(exc).__name__, infra_delay
                )
                await asyncio.sleep(infra_delay)
                infra_delay = min(infra_delay * 2, 10.0)
            except Exception as exc:  # noqa: BLE001 - a handler bug must not stop the partition
                attempt += 1
                if attempt >= s.handler_attempts:
                    await self._dead_letter(record, f"failed after {attempt} attempts: {type(exc).__name__}: {exc}")
                    return
                delay = s.retry_backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "consumer.retry event_id=%s attempt=%d %s; next in %.2fs",
                    envelope.id,
                    attempt,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        """Park the record with its reason and original headers; the caller then acks it."""
        reason = mask_personal_data(reason)[:2000]
        topic = self._settings.topic(dead_letter(self._settings.service_name).name)
        headers = list(record.headers or ()) + [
            ("dlq_reason", reason.encode("utf-8")),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_consumer", self._settings.schema.encode()),
            ("dlq_failed_at", self._clock.now().isoformat().encode()),
        ]
        # Awaited: if this fails the record is not acked and comes back (nothing is lost).
        await self._dlq_producer.send_and_wait(topic, value=record.value, key=record.key, headers=headers)
        self.dead_lettered += 1
        log.warning(
            "consumer.dead_lettered topic=%s partition=%d offset=%d reason=%s",
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
