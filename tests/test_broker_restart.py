"""The broker restarts (cleanly, and by SIGKILL) under running services: nothing already
acknowledged is lost, and what was submitted while it was down flows once it is back. The
broker is up again when it ends, so it may run anywhere in the suite."""

from __future__ import annotations

import subprocess
import sys

from ops.stack import REPO_ROOT
from shared.topic_reader import all_records
from shared.topics import DOSSIER
from tests.helpers import eventually, header, kafka_operator, platform_http, submission

BODY = submission(
    "1.000656",
    applicant={
        "full_name": "Lê Thị Ánh Tuyết",
        "id_number": "038190004321",
        "phone": "0356789012",
        "address": "Khu 3, thị trấn Hưng Hóa, huyện Tam Nông, tỉnh Phú Thọ",
    },
)


def stack_command(action: str) -> None:
    """The operator's own commands: ``make kafka-restart`` and ``lgsp stack ...``."""
    if action == "kafka-restart":
        cmd = ["make", "kafka-restart"]
    else:
        cmd = [sys.executable, "-m", "ops.cli", "stack", action]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, timeout=240)


async def submit(http, url, n):
    dossiers = []
    for _ in range(n):
        r = await http.post(f"{url}/v1/dossiers", json=BODY)
        assert r.status_code == 201, r.text
        dossiers.append((r.json()["id"], r.json()["code"]))
    return dossiers


async def all_recorded(http, url, ids):
    for _, code in ids:
        if (await http.get(f"{url}/v1/dossiers/{code}")).status_code != 200:
            return False
    return True


async def test_broker_restart_loses_nothing_acknowledged(platform, test_env):
    intake, routing = platform["intake"].url, platform["routing"].url
    topic = f"{test_env['LGSP_TOPIC_PREFIX']}.{DOSSIER.name}"
    async with platform_http(timeout=15) as http:
        before = await submit(http, intake, 10)
        await eventually(lambda: all_recorded(http, routing, before), what="routing to record the first 10")

        stack_command("kafka-restart")  # `make kafka-restart`: controlled shutdown, then start
        records = await all_records(kafka_operator(), topic)
        on_topic = {header(r, "ce_subject") for r in records if header(r, "ce_type") == "vn.lgsp.dossier.received.v1"}
        assert {i for i, _ in before} <= on_topic

        stack_command("kill-kafka")  # SIGKILL: no controlled shutdown
        during = await submit(http, intake, 3)  # intake answers: the outbox holds the events
        stack_command("start-kafka")
        after = await submit(http, intake, 3)
        await eventually(
            lambda: all_recorded(http, routing, before + during + after),
            timeout=120,
            what="routing to record everything after the broker came back",
        )

    records = await all_records(kafka_operator(), topic)
    received = [header(r, "ce_subject") for r in records if header(r, "ce_type") == "vn.lgsp.dossier.received.v1"]
    for dossier_id, _ in before + during + after:
        assert received.count(dossier_id) == 1, "each dossier's event is on the topic exactly once"
