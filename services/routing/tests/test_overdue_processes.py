"""A late dossier gets exactly one apology while two routing instances run their schedulers,
and the operator's timeline command shows it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta

from ops.processes import service
from ops.stack import REPO_ROOT
from shared.topic_reader import all_records
from tests.helpers import COMMUNE, IDENTITIES, eventually, header, kafka_operator, platform_http, submission


async def test_two_routing_instances_send_one_apology(platform, test_env, run_dir, clock):
    second = service("routing", test_env, run_dir / "logs-routing-2", port=18089).start()
    try:
        async with platform_http(timeout=15) as http:
            agencies = platform.agencies(http)
            # entered at the counter after an outage: received 20 days ago, a 3-day procedure
            received_at = (clock.now() - timedelta(days=20)).isoformat()
            r = await http.post(
                f"{platform['intake'].url}/v1/dossiers",
                json=submission("1.000894", channel="counter", received_at=received_at),
                auth=IDENTITIES.counter(COMMUNE),
            )
            assert r.status_code == 201, r.text
            d = r.json()

            async def intake_overdue():
                v = (await http.get(f"{platform['intake'].url}/v1/dossiers/{d['code']}")).json()
                return v if v["overdue"] else None

            view = await eventually(intake_overdue, what="the apology to reach intake")
            assert datetime.fromisoformat(view["due_at"]) > clock.now()  # the new appointment
            await asyncio.sleep(3)  # several more scheduler passes of both instances

            timeline = await agencies.timeline(d["code"])
        topic = f"{test_env['LGSP_TOPIC_PREFIX']}.dossier"
        records = await all_records(kafka_operator(), topic)
        apologies = [
            x
            for x in records
            if header(x, "ce_subject") == d["id"] and header(x, "ce_type") == "vn.lgsp.dossier.apologised.v1"
        ]
        assert len(apologies) == 1
        apology = next(t for t in timeline if t["event_type"] == "vn.lgsp.dossier.apologised.v1")
        assert apology["late"] is True and apology["agency_code"] == "000.21.12.H40"
        assert "xin lỗi" in apology["summary"]

        cli = subprocess.run(
            [sys.executable, "-m", "ops.cli", "timeline", d["code"], "--routing-url", platform["routing"].url],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert d["code"] in cli.stdout and "apologised" in cli.stdout and "LATE" in cli.stdout
        assert d["trace_id"] in cli.stdout
    finally:
        second.stop()
