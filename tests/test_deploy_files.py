"""The files for other environments stay in step with the code (no Docker here to run them)."""

import json
import re
from pathlib import Path

import yaml

from shared.settings import Settings
from shared.topics import definitions

ROOT = Path(__file__).resolve().parent.parent


def test_topics_json_matches_the_declarations():
    assert json.loads((ROOT / "deploy/kafka/topics.json").read_text(encoding="utf-8")) == definitions("lgsp")


def test_compose_runs_every_built_service_with_known_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    built = {p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists()}
    assert built <= set(services), f"docker-compose.yml lacks {built - set(services)}"
    known = {f"LGSP_{name.upper()}" for name in Settings.model_fields} | {"DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    for name in built:
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

    cfg = StackConfig(state_dir=tmp_path, kafka_port=1, kafka_controller_port=2, pg_port=3,
                      external_database_url=None, kafka_heap="1m")
    local = dict(line.split("=", 1) for line in _kafka_properties(cfg).splitlines() if "=" in line and not line.startswith("#"))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = compose["services"]["kafka"]["environment"]
    # the image maps KAFKA_A_B to a.b (and __ to _, ___ to -)
    as_properties = {k.removeprefix("KAFKA_").replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_").lower(): str(v)
                     for k, v in env.items()}
    for key in ("authorizer.class.name", "sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol",
                "super.users", "allow.everyone.if.no.acl.found", "inter.broker.listener.name"):
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
