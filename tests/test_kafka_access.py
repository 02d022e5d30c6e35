"""Kafka is authenticated and authorised on the real broker: an anonymous client and a wrong
password are refused, and each service may use only its own topics and consumer group."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError

from conftest import RUN_ID
from shared.kafka_access import KafkaAccess, local_password


@pytest.fixture(scope="module")
async def space(test_env, namespace):
    """A namespace of its own: the records written here must not reach the services of the run."""
    env = {**test_env, "LGSP_TOPIC_PREFIX": f"t{RUN_ID}k", "LGSP_SCHEMA_PREFIX": f"t{RUN_ID}_k_"}
    await namespace(env["LGSP_TOPIC_PREFIX"], env["LGSP_SCHEMA_PREFIX"])
    return env


def access(env, principal: str, password: str | None = None) -> KafkaAccess:
    return KafkaAccess(env["LGSP_KAFKA_BOOTSTRAP"], principal, password or local_password(principal))


async def produce(kafka: KafkaAccess, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka.options(), request_timeout_ms=5000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def test_an_anonymous_client_is_refused(space):
    producer = AIOKafkaProducer(bootstrap_servers=space["LGSP_KAFKA_BOOTSTRAP"], request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await producer.start()  # the broker speaks SASL only: no metadata for a plaintext client
        await producer.send_and_wait(f"{space['LGSP_TOPIC_PREFIX']}.dossier", b"{}")
    await producer.stop()


async def test_a_wrong_password_is_refused(space):
    with pytest.raises(KafkaError):
        await produce(access(space, "intake", "guessed"), f"{space['LGSP_TOPIC_PREFIX']}.dossier")


async def test_a_service_writes_its_own_topics_and_nowhere_else(space):
    prefix = space["LGSP_TOPIC_PREFIX"]
    intake = access(space, "intake")
    await produce(intake, f"{prefix}.dossier")  # its own: allowed
    await produce(intake, f"{prefix}.dlq.intake")  # its own dead letters: allowed
    for forbidden in (f"{prefix}.dlq.routing", f"{prefix}.document"):
        with pytest.raises(TopicAuthorizationFailedError):
            await produce(intake, forbidden)


async def test_a_service_reads_only_through_its_own_group(space):
    prefix, groups = space["LGSP_TOPIC_PREFIX"], space["LGSP_SCHEMA_PREFIX"]

    async def join(principal: str, group: str) -> None:
        consumer = AIOKafkaConsumer(
            f"{prefix}.dossier", **access(space, principal).options(), group_id=group, request_timeout_ms=10000
        )
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=2000)
        finally:
            await consumer.stop()

    await join("notify", f"{groups}notify")  # its own group: allowed
    with pytest.raises(GroupAuthorizationFailedError):
        await join("notify", f"{groups}routing")
    with pytest.raises(GroupAuthorizationFailedError):
        await join("notify", f"{groups}{uuid.uuid4().hex[:6]}")


def test_the_controller_listener_is_no_anonymous_super_user(local_stack, tmp_path):
    """The KRaft controller listener used to take anyone, as a super user: Kafka's own tool
    described (and could alter) the cluster's configuration with no credentials. It now
    speaks SASL like the broker listener: the same tool without credentials gets nothing, and
    with the nodes' own identity it still works (so the check is not just a closed port)."""
    import subprocess

    from ops import stack

    controller = f"127.0.0.1:{local_stack.controller_port(1)}"

    def describe(*config: str) -> subprocess.CompletedProcess:
        args = ["--bootstrap-controller", controller, "--describe", "--entity-type", "brokers", "--entity-default"]
        if config:
            (tmp_path / "client.properties").write_text("\n".join(config) + "\n")
            args += ["--command-config", str(tmp_path / "client.properties")]
        # a short timeout: an anonymous client is not answered, it is disconnected and retries
        return subprocess.run(
            stack._kafka_java(local_stack, "kafka.admin.ConfigCommand", *args),
            capture_output=True,
            text=True,
            timeout=120,
        )

    anonymous = describe("request.timeout.ms=5000", "default.api.timeout.ms=8000")
    assert anonymous.returncode != 0, anonymous.stdout
    as_broker = describe(
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=PLAIN",
        "sasl.jaas.config=" + stack._broker_plain_jaas(local_stack),
    )
    assert as_broker.returncode == 0, as_broker.stderr[-2000:]
