"""The files for other environments stay in step with the code (no Docker here to run them)."""

import json
import re
from pathlib import Path

import yaml

from shared.settings import settings_class
from shared.topics import definitions

ROOT = Path(__file__).resolve().parent.parent


def test_topics_json_matches_the_declarations():
    assert json.loads((ROOT / "deploy/kafka/topics.json").read_text(encoding="utf-8")) == definitions("lgsp")


def test_compose_runs_every_built_service_with_known_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    built = {p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists()}
    assert built <= set(services), f"docker-compose.yml lacks {built - set(services)}"
    for name in built:
        # each service is given only settings it reads: the shared ones and its own
        known = {f"LGSP_{field.upper()}" for field in settings_class(name).model_fields}
        known |= {"DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
        env = services[name]["environment"]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        assert services[name]["command"][-1] == f"services.{name}"


def test_compose_kafka_is_the_version_the_local_stack_runs():
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>([\d.]+)</kafka.version>", pom).group(1)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version}"


def test_compose_kafka_is_secured_like_the_local_stack(tmp_path):
    from ops.stack import StackConfig, _kafka_properties

    cfg = StackConfig(
        state_dir=tmp_path,
        kafka_port=1,
        kafka_controller_port=2,
        pg_port=3,
        external_database_url=None,
        kafka_heap="1m",
    )
    local = dict(
        line.split("=", 1) for line in _kafka_properties(cfg).splitlines() if "=" in line and not line.startswith("#")
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = compose["services"]["kafka"]["environment"]
    # the image maps KAFKA_A_B to a.b (and __ to _, ___ to -)
    as_properties = {
        k.removeprefix("KAFKA_")
        .replace("___", "-")
        .replace("__", "\0")
        .replace("_", ".")
        .replace("\0", "_")
        .lower(): str(v)
        for k, v in env.items()
    }
    for key in (
        "authorizer.class.name",
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "super.users",
        "allow.everyone.if.no.acl.found",
        "inter.broker.listener.name",
    ):
        assert as_properties[key] == local[key], key
    assert "ScramLoginModule" in as_properties["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    for name in ("intake", "routing", "postal", "notify"):
        assert compose["services"][name]["depends_on"]["kafka-access"]["condition"] == "service_completed_successfully"


def test_compose_runs_the_local_stacks_keycloak_with_its_realm():
    pom = (ROOT / "deploy/keycloak/pom.xml").read_text()
    version = re.search(r"<keycloak.version>([\d.]+)</keycloak.version>", pom).group(1)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    keycloak = compose["services"]["keycloak"]
    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{version}"
    realm_file = keycloak["volumes"][0].split(":")[0]
    assert (ROOT / realm_file).resolve() == (ROOT / "shared/reference/identity/lgsp-realm.json").resolve()
    for name in ("intake", "routing", "postal", "notify"):
        assert compose["services"][name]["environment"]["LGSP_OIDC_ISSUER"].endswith("/realms/lgsp")


def test_the_three_broker_stack_replicates_everything_and_needs_two_in_sync(tmp_path):
    from ops.stack import StackConfig, _kafka_properties
    from shared.topics import definitions

    cfg = StackConfig(
        state_dir=tmp_path,
        kafka_port=59092,
        kafka_controller_port=59093,
        pg_port=3,
        external_database_url=None,
        kafka_heap="1m",
        kafka_brokers=3,
    )
    nodes = [
        dict(
            line.split("=", 1)
            for line in _kafka_properties(cfg, n).splitlines()
            if "=" in line and not line.startswith("#")
        )
        for n in cfg.nodes
    ]
    assert [p["node.id"] for p in nodes] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in nodes} == {"1@127.0.0.1:59093,2@127.0.0.1:59095,3@127.0.0.1:59097"}
    assert [p["advertised.listeners"] for p in nodes] == [
        f"SASL_PLAINTEXT://127.0.0.1:{port}" for port in (59092, 59094, 59096)
    ]
    assert len({p["log.dirs"] for p in nodes}) == 3  # each node its own storage
    for p in nodes:
        assert (
            p["default.replication.factor"],
            p["min.insync.replicas"],
            p["offsets.topic.replication.factor"],
            p["transaction.state.log.min.isr"],
        ) == ("3", "2", "3", "2")
    assert cfg.bootstrap == "127.0.0.1:59092,127.0.0.1:59094,127.0.0.1:59096"
    assert {
        (d["replication_factor"], d["config"]["min.insync.replicas"]) for d in definitions("lgsp", cfg.replication)
    } == {(3, "2")}
    single = StackConfig(
        state_dir=tmp_path,
        kafka_port=59092,
        kafka_controller_port=59093,
        pg_port=3,
        external_database_url=None,
        kafka_heap="1m",
    )
    assert single.bootstrap == "127.0.0.1:59092" and single.node_dir(1) == tmp_path / "kafka"
    assert _kafka_properties(single).count("min.insync.replicas=1") == 1
