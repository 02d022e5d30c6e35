"""Transactional outbox: events are rows written in the handler's own transaction; a relay
publishes them to Kafka (idempotent producer, ``acks=all``) and marks them published.

Exactly-once publication across crashes: before sending a batch the relay records the end
offsets of the partitions it may write to. If it dies after sending but before marking, the
next relay reads the topic from those offsets, marks the events it finds there and publishes
only the rest. One relay per schema runs at a time (a session advisory lock), which keeps the
outbox's order on every partition.

Run standalone (for tests and operators): ``python -m shared.outbox`` with the service's
``LGSP_*`` settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from shared.events import Envelope, EventData
from shared.kafka_access import KafkaAccess
from shared.settings import Settings
from shared.telemetry import context_from_headers, current_trace_headers, tracer
from shared.topic_reader import read_records
from shared.topics import DOSSIER, Topic
from shared.waking import woken

log = logging.getLogger(__name__)


class Outbox:
    """Writes events into the caller's transaction. Nothing is sent until it commits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # NOTIFY wakes a relay in another process; the relay of this one is woken in-process
        # after the commit (``take_written``), which spares the listener a transaction per write.
        self.notify_relay = True
        self._written = False

    def take_written(self) -> bool:
        """Whether events were added since the last call (their transactions have ended)."""
        written, self._written = self._written, False
        return written

    async def add(self, conn: asyncpg.Connection, data: EventData, topic: Topic = DOSSIER) -> Envelope:
        [envelope] = await self.add_all(conn, [data], topic)
        return envelope

    async def add_all(
        self, conn: asyncpg.Connection, events: Sequence[EventData], topic: Topic = DOSSIER
    ) -> list[Envelope]:
        """Several events of one transaction, in this order, with one statement."""
        trace_headers = current_trace_headers()
        envelopes = [
            Envelope.new(
                data,
                source=f"/lgsp/{self._settings.service_name}",
                traceparent=trace_headers.get("traceparent"),
                tracestate=trace_headers.get("tracestate"),
            )
            for data in events
        ]
        # signed by this service, so consumers can tell who emitted each event (shared/provenance.py)
        provenance = self._settings.provenance
        envelopes = [replace(e, signature=provenance.signature(e)[1].decode()) for e in envelopes]
        columns = (
            [e.id for e in envelopes],
            [e.key for e in envelopes],
            [json.dumps([[k, v.decode("utf-8")] for k, v in e.headers()], ensure_ascii=False) for e in envelopes],
            [e.data for e in envelopes],
        )
        self._written = True
        # NOTIFY is delivered at commit, so a relay elsewhere wakes exactly when the rows are visible.
        await conn.execute(
            "WITH row AS (INSERT INTO outbox (event_id, topic, key, headers, payload) "
            "  SELECT r.event_id, $1, r.key, r.headers, r.payload "
            "  FROM unnest($2::uuid[], $3::bytea[], $4::jsonb[], $5::bytea[]) WITH ORDINALITY AS r(event_id, key, headers, payload, n) "
            "  ORDER BY r.n) "  # the outbox's seq is the publishing order
            + ("SELECT pg_notify($6, '')" if self.notify_relay else "SELECT $6::text"),
            self._settings.topic(topic.name),
            *columns,
            notify_channel(self._settings.schema),
        )
        return envelopes


def _offsets_json(ends: dict[TopicPartition, int]) -> str:
    return json.dumps({f"{tp.topic}:{tp.partition}": off for tp, off in ends.items()})


def notify_channel(schema: str) -> str:
    return f"outbox_{schema}"


def kafka_producer(kafka: KafkaAccess) -> AIOKafkaProducer:
    """The platform's producer settings: nothing acknowledged is lost, retries do not duplicate."""
    return AIOKafkaProducer(
        **kafka.options(),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=15000,
        max_batch_size=256 * 1024,
    )


@dataclass
class _Row:
    seq: int
    event_id: str
    topic: str
    key: bytes | None
    headers: list[list[str]]
    payload: bytes


def _failpoint(name: str) -> None:
    """Test hook: ``LGSP_FAILPOINT=<name>`` makes the process die here as if SIGKILLed."""
    if os.environ.get("LGSP_FAILPOINT") == name:
        log.warning("relay.failpoint name=%s: exiting abruptly", name)
        os._exit(137)


class OutboxRelay:
    def __init__(self, settings: Settings, on_active: Callable[[bool], None] | None = None) -> None:
        self._settings = settings
        self._on_active = on_active or (lambda active: None)  # told when this relay starts and stops relaying
        self._wakeup = asyncio.Event()
        self._partitions: dict[str, list[int]] = {}
        self._sent_unmarked: list[int] = []  # sent and acknowledged; marked by the next statement
        self.published = 0

    async def run(self) -> None:
        """Relay until cancelled; any failure (broker or database down) is retried with backoff."""
        delay = 0.5
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                log.warning("relay.error %s: %s; retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _session(self) -> None:
        s = self._settings
        conn = await asyncpg.connect(
            s.database_url,
            timeout=10,
            server_settings={"search_path": f'"{s.schema}"', "application_name": f"{s.schema}-relay"},
        )
        producer = kafka_producer(s.kafka)
        probe = AIOKafkaConsumer(**s.kafka.options(), enable_auto_commit=False)
        active = False
        try:
            # One relay per schema: a standby instance waits here until the active one dies.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"outbox-relay:{s.schema}"):
                await asyncio.sleep(1.0)
            await conn.add_listener(notify_channel(s.schema), lambda *_: self._wakeup.set())
            await producer.start()
            await probe.start()
            active = True
            self._on_active(True)
            log.info("relay.started schema=%s", s.schema)
            # A batch is only ever left half-done by a failure, and every failure ends the
            # session: settling it once at the start is enough.
            self._sent_unmarked = []
            await self._recover(conn)
            while True:
                self._wakeup.clear()
                sent = await self._publish_batch(conn, producer, probe)
                if sent == 0:
                    await woken(self._wakeup, s.relay_idle_s)
        finally:
            if active:
                self._on_active(False)
            try:  # bounded: a client stuck waiting for a broker must not hold up a shutdown
                async with asyncio.timeout(10):
                    await asyncio.gather(producer.stop(), probe.stop(), return_exceptions=True)
            except TimeoutError:
                log.warning("relay.stop_timeout schema=%s: Kafka clients did not stop within 10 s", s.schema)
            try:  # a listening connection's graceful close can wait on the server: bounded too
                async with asyncio.timeout(5):
                    await conn.close()
            except (TimeoutError, OSError):
                conn.terminate()

    def wake(self) -> None:
        """Events were committed in this process: publish them now."""
        self._wakeup.set()

    async def _partitions_of(self, producer: AIOKafkaProducer, topic: str) -> list[int]:
        if topic not in self._partitions:
            parts = await producer.partitions_for(topic)  # waits for metadata; fails if unknown
            self._partitions[topic] = sorted(parts)
        return self._partitions[topic]

    async def _publish_batch(
        self, conn: asyncpg.Connection, producer: AIOKafkaProducer, probe: AIOKafkaConsumer
    ) -> int:
        """Marks the batch sent last time and claims the next one, recording the partitions'
        end offsets for it, in one statement (one commit per batch); then sends it. The
        batch sent last stays unmarked until this next call, or until a new relay's recovery
        finds it on the topic."""
        known = [TopicPartition(t, p) for t, parts in self._partitions.items() for p in parts]
        ends = await probe.end_offsets(known) if known else {}
        records = await conn.fetch(
            "WITH marked AS (UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])), "
            "batch AS (SELECT seq, event_id::text, topic, key, headers, payload FROM outbox "
            "          WHERE published_at IS NULL AND seq <> ALL($1::bigint[]) ORDER BY seq LIMIT $2), "
            "attempt AS (INSERT INTO outbox_relay_attempt (max_seq, offsets) SELECT max(seq), $3 FROM batch HAVING count(*) > 0 "
            "            ON CONFLICT (singleton) DO UPDATE SET max_seq = EXCLUDED.max_seq, offsets = EXCLUDED.offsets, "
            "            started_at = now()), "
            "settled AS (DELETE FROM outbox_relay_attempt WHERE NOT EXISTS (SELECT 1 FROM batch)) "
            "SELECT * FROM batch ORDER BY seq",
            self._sent_unmarked,
            self._settings.relay_batch,
            _offsets_json(ends),
        )
        self.published += len(self._sent_unmarked)
        self._sent_unmarked = []
        if not records:
            return 0
        rows = [
            _Row(r["seq"], r["event_id"], r["topic"], r["key"], json.loads(r["headers"]), r["payload"]) for r in records
        ]
        new_topics = {r.topic for r in rows} - set(self._partitions)
        if new_topics:
            # A topic this relay has not written yet: its end offsets belong in the attempt too.
            for topic in new_topics:
                await self._partitions_of(producer, topic)
            tps = [TopicPartition(t, p) for t, parts in self._partitions.items() for p in parts]
            await conn.execute(
                "UPDATE outbox_relay_attempt SET offsets = $1", _offsets_json(await probe.end_offsets(tps))
            )
        _failpoint("relay-before-send")
        await self._send(producer, rows)
        _failpoint("relay-after-send")
        self._sent_unmarked = [r.seq for r in rows]
        return len(rows)

    async def _send(self, producer: AIOKafkaProducer, rows: list[_Row]) -> None:
        spans, futures = [], []
        t = tracer("lgsp.outbox")
        for row in rows:
            stored = dict(row.headers)
            span = t.start_span(
                f"{row.topic} publish",
                kind=SpanKind.PRODUCER,
                context=context_from_headers(stored),
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": row.topic,
                    "messaging.message.id": row.event_id,
                    "messaging.operation.type": "publish",
                    "cloudevents.event_type": stored.get("ce_type", ""),
                },
            )
            # The consumer's span becomes a child of this publish span.
            with trace.use_span(span, end_on_exit=False):
                fresh = current_trace_headers()
            headers = [(k, v.encode("utf-8")) for k, v in row.headers if k not in ("traceparent", "tracestate")]
            headers += [(k, v.encode("utf-8")) for k, v in fresh.items()]
            futures.append(await producer.send(row.topic, value=row.payload, key=row.key, headers=headers))
            spans.append(span)
        results = await asyncio.gather(*futures, return_exceptions=True)
        failure = None
        for span, result in zip(spans, results):
            if isinstance(result, BaseException):
                span.set_status(StatusCode.ERROR, type(result).__name__)
                failure = failure or result
            else:
                span.set_attribute("messaging.destination.partition.id", str(result.partition))
                span.set_attribute("messaging.kafka.offset", result.offset)
            span.end()
        if failure is not None:
            raise failure

    async def _recover(self, conn: asyncpg.Connection) -> None:
        """Settle a batch a previous relay began: mark what reached Kafka, leave the rest."""
        attempt = await conn.fetchrow("SELECT max_seq, offsets FROM outbox_relay_attempt")
        if attempt is None:
            return
        pending = {
            r["event_id"]: r["seq"]
            for r in await conn.fetch(
                "SELECT seq, event_id::text FROM outbox WHERE published_at IS NULL AND seq <= $1", attempt["max_seq"]
            )
        }
        found: set[str] = set()
        if pending:
            starts = {}
            for name, offset in json.loads(attempt["offsets"]).items():
                topic, _, partition = name.rpartition(":")
                starts[TopicPartition(topic, int(partition))] = offset
            found = await scan_event_ids(self._settings.kafka, starts, set(pending))
        async with conn.transaction():
            if found:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [pending[i] for i in found]
                )
            await conn.execute("DELETE FROM outbox_relay_attempt")
        log.info("relay.recovered already_published=%d to_publish=%d", len(found), len(pending) - len(found))


async def scan_event_ids(kafka: KafkaAccess, starts: dict[TopicPartition, int], wanted: set[str]) -> set[str]:
    """Read partitions from the given offsets to their current end; return the wanted ce_ids seen."""
    if not starts:
        # nothing to read (an attempt made before the relay knew any partition). Not even a
        # consumer: one stopped after assign([]) raises CancelledError from its coordinator,
        # which ended the relay's task without a word.
        return set()
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False)
    await consumer.start()
    found: set[str] = set()
    try:
        async for _, rec in read_records(consumer, starts):
            ce_id = dict(rec.headers).get("ce_id", b"").decode("utf-8", "replace")
            if ce_id in wanted:
                found.add(ce_id)
    finally:
        await consumer.stop()
    return found


async def _main() -> None:
    from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing

    settings = Settings()
    setup_logging(f"{settings.service_name}-relay")
    setup_tracing(settings.service_name, settings.traces_path, settings.otlp_endpoint)
    try:
        await OutboxRelay(settings).run()
    finally:
        shutdown_tracing()


if __name__ == "__main__":
    asyncio.run(_main())
