"""Consuming with exactly-once effects: inbox de-duplication, dead letters, re-drive.

Each test gets its own topics and schema, a real FastStream subscriber on the real broker,
and a handler that records its effect in a table.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from conftest import RUN_ID
from shared import dlq
from shared.clock import FixedClock
from shared.consumer import EventConsumer, Rejected
from shared.db import create_pool, migrate
from shared.events import DossierWithdrawn, Envelope
from shared.outbox import kafka_producer
from shared.topic_reader import all_records
from shared.topics import DOSSIER, dead_letter
from tests.helpers import eventually, header, kafka_operator, signed

_rig_numbers = itertools.count()


class Rig:
    def __init__(self, settings, pool, consumer, operator):
        self.settings = settings
        self.operator = operator
        self.pool = pool
        self.consumer = consumer
        self.failing: set[str] = set()  # dossier codes whose handling raises
        self.producer: AIOKafkaProducer

    @property
    def topic(self) -> str:
        return self.settings.topic(DOSSIER.name)

    async def send(self, value: bytes | None, headers, key: bytes = b"same-dossier") -> None:
        await self.producer.send_and_wait(self.topic, value=value, key=key, headers=headers)

    async def send_event(self, code: str, key: bytes = b"same-dossier", envelope: Envelope | None = None) -> Envelope:
        env = envelope or signed(
            Envelope.new(
                DossierWithdrawn(
                    dossier_id=uuid.uuid4(),
                    dossier_code=code,
                    at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                    reasons=("thử",),
                ),
                "/lgsp/routing",
            ),
            "routing",
        )
        await self.send(env.data, env.headers(), key)
        return env

    async def effects(self, code: str) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM effects WHERE code = $1", code)

    async def dead_letters(self):
        records = await all_records(self.operator, self.settings.topic(dead_letter("routing").name))
        return [r for r in records if header(r, "dlq_consumer") == self.settings.schema]


@pytest.fixture
async def rig(settings_for, namespace):
    n = next(_rig_numbers)
    settings = settings_for(
        "routing",
        topic_prefix=f"t{RUN_ID}c{n}",
        schema_prefix=f"t{RUN_ID}_c{n}_",
        handler_attempts=3,
        retry_backoff_s=0.01,
    )
    await namespace(settings.topic_prefix, settings.schema_prefix)
    pool = await create_pool(settings.database_url, settings.schema)
    await migrate(pool, settings.schema, None)
    await pool.execute("CREATE TABLE effects (code text NOT NULL, event_id text NOT NULL)")
    dlq_producer = kafka_producer(settings.kafka)
    await dlq_producer.start()
    consumer = EventConsumer(
        settings, pool, dlq_producer, FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    )
    r = Rig(settings, pool, consumer, kafka_operator())

    @consumer.on(DossierWithdrawn)
    async def record_effect(event, envelope, conn):
        if event.dossier_code in r.failing:
            raise RuntimeError("the agency's system answered 503")
        if event.dossier_code.startswith("REJECT"):
            raise Rejected("dossier belongs to no agency of this province")
        await conn.execute("INSERT INTO effects (code, event_id) VALUES ($1, $2)", event.dossier_code, envelope.id)

    broker = KafkaBroker(settings.kafka_bootstrap, security=settings.kafka.broker_security())
    consumer.subscribe(broker, DOSSIER)
    await broker.start()
    r.producer = kafka_producer(kafka_operator())  # the test injects records as the operator
    await r.producer.start()
    yield r
    await broker.stop()
    await r.producer.stop()
    await dlq_producer.stop()
    await pool.close()


async def test_same_event_delivered_twice_has_one_effect(rig):
    env = await rig.send_event("000.00.12.H41-261123-0001")
    await rig.send_event("000.00.12.H41-261123-0001", envelope=env)  # the very same ce_id again
    marker = await rig.send_event("000.00.12.H41-261123-0002")  # sent after both copies
    await eventually(lambda: rig.effects(marker.id and "000.00.12.H41-261123-0002"), what="the marker event")
    assert await rig.effects("000.00.12.H41-261123-0001") == 1
    inbox = await rig.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", env.id)
    assert inbox == 1


async def test_poison_records_are_dead_lettered_and_the_partition_flows_on(rig):
    good = signed(
        Envelope.new(
            DossierWithdrawn(
                dossier_id=uuid.uuid4(),
                dossier_code="000.00.12.H41-261123-0007",
                at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                reasons=("thử",),
            ),
            "/lgsp/routing",
        ),
        "routing",
    )
    bad_type = [(k, b"vn.lgsp.dossier.teleported.v1" if k == "ce_type" else v) for k, v in good.headers()]
    wrong_schema = json.dumps({"dossier_id": "not-a-uuid", "dossier_code": 5}).encode()
    poisons = {
        "bad json": (b"{this is not json", good.headers()),
        "no headers": (good.data, []),
        "wrong schema": (wrong_schema, [(k, v) for k, v in good.headers() if k != "ce_id"] + [("ce_id", b"x-1")]),
        "unknown type": (good.data, bad_type),
        "no body": (None, [(k, v) for k, v in good.headers() if k != "ce_id"] + [("ce_id", b"x-2")]),
        "huge but valid JSON of the wrong shape": (
            json.dumps({"x": "Đ" * 200_000}, ensure_ascii=False).encode(),
            [(k, v) for k, v in good.headers() if k != "ce_id"] + [("ce_id", b"x-3")],
        ),
    }
    for value, headers in poisons.values():
        await rig.send(value, headers)
    await rig.send_event("", envelope=good)  # same key, so same partition, after all the poison

    await eventually(lambda: rig.effects("000.00.12.H41-261123-0007"), what="the good event behind the poison")
    letters = await eventually(lambda: _at_least(rig.dead_letters, len(poisons)), what="all poison dead-lettered")
    reasons = [header(r, "dlq_reason") for r in letters]
    assert len(letters) == len(poisons)
    assert any("not JSON" in r for r in reasons)
    assert any("missing CloudEvents headers" in r for r in reasons)
    assert any("does not match vn.lgsp.dossier.withdrawn.v1" in r and "dossier_id" in r for r in reasons)
    assert any("unknown event type 'vn.lgsp.dossier.teleported.v1'" in r for r in reasons)
    assert any("no body" in r for r in reasons)
    for r in letters:  # the original record travels with its reason
        assert header(r, "dlq_source_topic") == rig.topic
        assert header(r, "dlq_source_offset").isdigit()


async def _at_least(fetch, n):
    items = await fetch()
    return items if len(items) >= n else None


async def test_failing_handler_is_retried_then_dead_lettered_then_redriven(rig):
    code = "000.00.12.H41-261123-0099"
    rig.failing.add(code)
    failing = await rig.send_event(code)
    after = await rig.send_event("000.00.12.H41-261123-0100")
    await eventually(lambda: rig.effects("000.00.12.H41-261123-0100"), what="the next event on the partition")
    [letter] = await eventually(rig.dead_letters, what="the failing event to be dead-lettered")
    assert "failed after 3 attempts: RuntimeError: the agency's system answered 503" in header(letter, "dlq_reason")
    assert header(letter, "ce_id") == failing.id
    assert await rig.effects(code) == 0

    rig.failing.clear()  # "the fix is deployed"
    operator = rig.settings.model_copy(update={"kafka_username": "lgsp"})  # re-drive is an operator's act
    assert await dlq.redrive(operator, "routing") == 1
    await eventually(lambda: rig.effects(code), what="the re-driven event to be handled")
    assert await dlq.redrive(operator, "routing") == 0  # progress is remembered
    assert await rig.effects(code) == 1
    assert await rig.effects("000.00.12.H41-261123-0100") == 1
    assert after.id != failing.id


async def test_rejected_event_is_dead_lettered_without_retry(rig):
    env = await rig.send_event("REJECT-1")
    [letter] = await eventually(rig.dead_letters, what="the rejected event")
    assert header(letter, "dlq_reason") == "rejected: dossier belongs to no agency of this province"
    assert header(letter, "ce_id") == env.id


async def test_an_event_from_a_service_that_does_not_own_its_type_is_dead_lettered(rig):
    """Every dossier service may write the dossier topic, so notify could publish routing's
    events; now each event is signed by its producer and only the owner's are believed."""
    at = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

    def withdrawn(code: str, source: str) -> Envelope:
        return Envelope.new(
            DossierWithdrawn(dossier_id=uuid.uuid4(), dossier_code=code, at=at, reasons=("giả",)), source
        )

    forged = {
        "notify's signature under routing's name": signed(
            withdrawn("000.00.12.H41-261123-0101", "/lgsp/routing"), "notify"
        ),
        "notify's own name": signed(withdrawn("000.00.12.H41-261123-0102", "/lgsp/notify"), "notify"),
        "no signature": withdrawn("000.00.12.H41-261123-0103", "/lgsp/routing"),
    }
    for env in forged.values():
        await rig.send_event("", envelope=env)
    await rig.send_event("000.00.12.H41-261123-0104")  # routing's own, behind them

    await eventually(
        lambda: rig.effects("000.00.12.H41-261123-0104"), what="routing's own event behind the forged ones"
    )
    letters = await eventually(lambda: _at_least(rig.dead_letters, len(forged)), what="the forged events dead-lettered")
    reasons = sorted(header(r, "dlq_reason") for r in letters)
    assert reasons == sorted(
        [
            "provenance: vn.lgsp.dossier.withdrawn.v1 is not signed by routing",
            # before payment intake takes a withdrawal (routing does not have the dossier yet)
            "provenance: vn.lgsp.dossier.withdrawn.v1 is intake or routing's to emit, not /lgsp/notify's",
            "provenance: vn.lgsp.dossier.withdrawn.v1 from routing carries no signature",
        ]
    )
    for code in ("000.00.12.H41-261123-0101", "000.00.12.H41-261123-0102", "000.00.12.H41-261123-0103"):
        assert await rig.effects(code) == 0


async def test_a_redriven_dead_letter_is_taken_again_only_by_the_consumer_that_parked_it(rig):
    """A re-drive sends a dead letter back to the shared topic; every other service used to
    park the poison again, so each re-drive multiplied every service's dead letters."""
    others = [("ce_type", b"vn.lgsp.dossier.received.v1"), ("lgsp_redriven_for", b"another_service_schema")]
    mine = [("ce_type", b"vn.lgsp.dossier.received.v1"), ("lgsp_redriven_for", rig.settings.schema.encode())]
    before = len(await rig.dead_letters())
    await rig.send(b"{not json", others)
    await rig.send(b"{not json", mine)
    await rig.send_event("000.00.12.H41-261123-0201")  # behind them, same partition
    await eventually(lambda: rig.effects("000.00.12.H41-261123-0201"), what="the event behind the re-driven ones")
    letters = await eventually(lambda: _at_least(rig.dead_letters, before + 1), what="its own re-driven letter parked")
    assert len(letters) == before + 1
