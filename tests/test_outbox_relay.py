"""The outbox relay publishes each event exactly once, even when killed mid-batch.

The relay runs as its own process with a failpoint that makes it die abruptly (exit 137,
as from SIGKILL) at the chosen moment; a fresh relay then finishes the job.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import asyncpg
import pytest

from conftest import RUN_ID
from ops.stack import REPO_ROOT
from shared.db import create_pool, migrate
from shared.events import DossierWithdrawn
from shared.outbox import Outbox, OutboxRelay
from shared.topic_reader import all_records
from shared.topics import DOSSIER
from tests.helpers import eventually, header, kafka_operator

SERVICE = "relaytest"
PRINCIPAL = "routing"  # a service principal allowed to write this run's dossier topic


@pytest.fixture(scope="module")
async def relay_space(namespace) -> dict[str, str]:
    """A namespace of its own: the relay's made-up service writes events no platform service
    of the run owns, so they would be dead-lettered there."""
    space = {"LGSP_TOPIC_PREFIX": f"t{RUN_ID}r", "LGSP_SCHEMA_PREFIX": f"t{RUN_ID}_r_"}
    await namespace(space["LGSP_TOPIC_PREFIX"], space["LGSP_SCHEMA_PREFIX"])
    return space


@pytest.fixture
async def relay_rig(settings_for, relay_space):
    settings = settings_for(
        SERVICE,
        kafka_username=PRINCIPAL,
        topic_prefix=relay_space["LGSP_TOPIC_PREFIX"],
        schema_prefix=relay_space["LGSP_SCHEMA_PREFIX"],
    )
    pool = await create_pool(settings.database_url, settings.schema)
    await migrate(pool, settings.schema, None)
    yield settings, pool, Outbox(settings)
    await pool.close()


async def write_event(pool, outbox):
    async with pool.acquire() as conn, conn.transaction():
        return await outbox.add(
            conn,
            DossierWithdrawn(
                dossier_id=uuid.uuid4(),
                dossier_code="000.00.12.H41-261123-0042",
                at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                reasons=("Công dân không còn nhu cầu",),
            ),
        )


async def copies_on_topic(settings, event_id: str) -> int:
    records = await all_records(kafka_operator(), settings.topic(DOSSIER.name))
    return sum(1 for r in records if header(r, "ce_id") == event_id)


async def published_at(pool, event_id: str):
    return await pool.fetchval("SELECT published_at FROM outbox WHERE event_id = $1", uuid.UUID(event_id))


def run_relay_until_failpoint(test_env, settings, failpoint: str) -> int:
    env = {
        **test_env,
        "LGSP_SERVICE_NAME": SERVICE,
        "LGSP_KAFKA_USERNAME": PRINCIPAL,
        "LGSP_FAILPOINT": failpoint,
        "LGSP_TOPIC_PREFIX": settings.topic_prefix,
        "LGSP_SCHEMA_PREFIX": settings.schema_prefix,
    }
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "shared.outbox"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        timeout=120,
        capture_output=True,
        text=True,
    )
    return proc.returncode


@asynccontextmanager
async def running_relay(settings):
    relay = OutboxRelay(settings)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_killed_after_commit_before_publish(relay_rig, test_env):
    settings, pool, outbox = relay_rig
    event = await write_event(pool, outbox)
    assert run_relay_until_failpoint(test_env, settings, "relay-before-send") == 137
    assert await copies_on_topic(settings, event.id) == 0
    assert await published_at(pool, event.id) is None

    async with running_relay(settings):
        await eventually(lambda: published_at(pool, event.id), what="the event to be marked published")
    assert await copies_on_topic(settings, event.id) == 1


async def test_killed_after_publish_before_mark(relay_rig, test_env):
    settings, pool, outbox = relay_rig
    event = await write_event(pool, outbox)
    assert run_relay_until_failpoint(test_env, settings, "relay-after-send") == 137
    assert await copies_on_topic(settings, event.id) == 1  # it reached Kafka...
    assert await published_at(pool, event.id) is None  # ...but was never marked

    async with running_relay(settings):
        await eventually(lambda: published_at(pool, event.id), what="recovery to mark the event")
        later = await write_event(pool, outbox)
        await eventually(lambda: published_at(pool, later.id), what="the relay to go on after recovery")
    assert await copies_on_topic(settings, event.id) == 1  # recovery found it; no second copy
    assert await copies_on_topic(settings, later.id) == 1


async def test_events_keep_outbox_order_on_a_partition(relay_rig):
    settings, pool, outbox = relay_rig
    dossier_id = uuid.uuid4()
    ids = []
    for i in range(20):
        async with pool.acquire() as conn, conn.transaction():
            env = await outbox.add(
                conn,
                DossierWithdrawn(
                    dossier_id=dossier_id,
                    dossier_code=f"000.00.12.H41-261123-{i + 1:04d}",
                    at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                    reasons=("thử thứ tự",),
                ),
            )
            ids.append(env.id)
    async with running_relay(settings):
        await eventually(lambda: published_at(pool, ids[-1]), what="the last event to be published")
    records = await all_records(kafka_operator(), settings.topic(DOSSIER.name))
    seen = [header(r, "ce_id") for r in records if header(r, "ce_id") in set(ids)]
    assert seen == ids


async def test_a_relay_in_this_process_is_woken_without_notify(relay_rig):
    """While this process's relay holds the outbox, writes here skip NOTIFY (which costs the
    listener a transaction each) and wake it in-process; with the relay's idle poll set to an
    hour, the event still goes out at once. Writes elsewhere keep notifying."""
    settings, pool, outbox = relay_rig
    settings = settings.model_copy(update={"relay_idle_s": 3600.0})
    active: list[bool] = []

    def on_active(flag: bool) -> None:
        active.append(flag)
        outbox.notify_relay = not flag

    relay = OutboxRelay(settings, on_active=on_active)
    task = asyncio.create_task(relay.run())
    listener = await asyncpg.connect(settings.database_url)  # its own: LISTEN must not stay on a pooled one
    heard: list[str] = []
    try:
        await eventually(lambda: asyncio.sleep(0, result=active == [True]), what="the relay to take the outbox")
        await listener.add_listener(f"outbox_{settings.schema}", lambda *args: heard.append(args[2]))
        event = await write_event(pool, outbox)
        assert outbox.take_written() and not outbox.take_written()
        relay.wake()  # what the service runtime does once the transaction has ended
        await eventually(lambda: published_at(pool, event.id), what="the event published after an in-process wake")
        assert await copies_on_topic(settings, event.id) == 1
        assert heard == []

        elsewhere = Outbox(settings)  # another instance of the service: its relay is not this one
        await write_event(pool, elsewhere)
        await eventually(lambda: asyncio.sleep(0, result=len(heard) == 1), what="the other instance's NOTIFY")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        listener.terminate()  # (a graceful close of a listening connection can wait on a fresh server)
    assert active == [True, False]


async def test_an_attempt_made_before_the_relay_knew_any_partition_is_settled_and_the_relay_goes_on(relay_rig):
    """Found by `lgsp chaos --dossiers 3000`: a relay killed during its first batch, before it
    had learnt any partition, leaves an attempt with no offsets. The next relay's recovery
    stopped a consumer it had assigned nothing, which raised CancelledError and ended the
    relay's task silently: the documents service never published again."""
    settings, pool, outbox = relay_rig
    event = await write_event(pool, outbox)
    await pool.execute("INSERT INTO outbox_relay_attempt (max_seq, offsets) SELECT max(seq), '{}' FROM outbox")
    async with running_relay(settings):
        await eventually(lambda: published_at(pool, event.id), what="the unsettled event to be published")
        later = await write_event(pool, outbox)
        await eventually(lambda: published_at(pool, later.id), what="the relay to go on after recovery")
    # it could not be looked for on the topic, so it went again: consumers drop the copy by its id
    assert await copies_on_topic(settings, event.id) == 1
    assert await copies_on_topic(settings, later.id) == 1
