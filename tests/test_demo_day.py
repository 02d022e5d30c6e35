"""The demo's replayed day, small, against this run's platform: every simulated official reads
the dossier before acting, so whatever paths the dice choose (supplements, late entries,
pickups, results by post) no action is one the platform must refuse. Run at every instant
the suite is run at (see the README: the suite runs at several awkward instants)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ops.demo_day import replay_day
from tests.helpers import eventually, platform_http

pytestmark = pytest.mark.instants  # its outcome depends on the platform's clock: run at every awkward instant


async def test_a_replayed_day_runs_clean_and_every_owed_apology_is_sent(platform, clock):
    urls = {
        name: platform[name].url
        for name in ("intake", "routing", "postal", "notify", "carrier", "messaging", "portal", "population", "payment")
    }
    async with platform_http(timeout=10) as http:
        await http.post(f"{urls['carrier']}/control", json={"delay_s": 0.1})  # defaults otherwise: no faults
        await http.post(f"{urls['messaging']}/control", json={"down": []})
        start = clock.now()
        period = {"from": (start - timedelta(days=25)).isoformat(), "to": (start + timedelta(days=1)).isoformat()}
        before = (await http.get(f"{urls['intake']}/v1/reports", params=period)).json()["total"][
            "received"
        ]  # other tests'
        tally = await replay_day(urls, 40, clock, platform.decisions(), seed=11)
        assert tally.errors == 0, tally.error_samples
        assert tally.submitted == 40 and tally.received + tally.refused == 40
        assert tally.received > 30 and tally.returned > 20 and tally.supplements > 0 and tally.late_entries > 0

        async def apologies_settled():
            # late entries are received up to 20 days back; the period covers them all
            r = await http.get(
                f"{urls['intake']}/v1/reports",
                params={
                    "from": (start - timedelta(days=25)).isoformat(),
                    "to": (clock.now() + timedelta(days=1)).isoformat(),
                },
            )
            total = r.json()["total"]
            owed, sent = total["apologies_owed"], total["apologies_sent"]
            return total if owed == sent else None

        total = await eventually(apologies_settled, timeout=30, interval=0.5, what="every owed apology to be sent")
    assert total["received"] - before == tally.received
