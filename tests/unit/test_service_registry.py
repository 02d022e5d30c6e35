"""One list of services (shared/services.py): everything that names the services reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared import services as registry
from shared.kafka_access import SERVICE_PRINCIPALS
from shared.topics import ALL_TOPICS, consumed_topics, dead_letter


def test_every_place_that_lists_services_lists_the_registry():
    from ops import fuzz, processes
    from services.console import sources

    names = set(registry.NAMES)
    assert set(processes.SERVICE_PORTS) == names and set(processes.SERVICES) == names
    assert set(fuzz.SERVICES) == names and set(sources.SERVICES) == names
    assert set(SERVICE_PRINCIPALS) == names
    assert {t.name for t in ALL_TOPICS} >= {dead_letter(n).name for n in names}
    for s in registry.SERVICES:
        assert [t.name for t in consumed_topics(s.name)] == list(s.consumes)
        assert (Path(__file__).parents[2] / "services" / s.name / "__main__.py").is_file()


def test_the_compose_file_runs_every_service_and_the_console():
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    assert {*registry.NAMES, registry.CONSOLE.name} <= set(compose["services"])


def test_lgsp_run_offers_every_service_and_the_console(capsys):
    from ops.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["run", "no-such-service"])
    assert refused.value.code == 2
    offered = capsys.readouterr().err.split("choose from", 1)[1]
    for name in (*registry.NAMES, registry.CONSOLE.name):
        assert repr(name) in offered or name in offered
