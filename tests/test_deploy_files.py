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
