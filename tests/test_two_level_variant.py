"""Today's two-level tree (province -> commune) runs on the same code, chosen by configuration."""

from __future__ import annotations

import pytest

from conftest import RUN_ID
from ops.clients import upload_component_files
from ops.processes import service
from tests.helpers import eventually, platform_http, submission

COMMUNE_2L = "000.00.21.H40"  # Ủy ban nhân dân phường Hoa Lư


@pytest.fixture(scope="module")
async def two_level(test_env, run_dir, namespace):
    env = {
        **test_env,
        "LGSP_REFERENCE_VARIANT": "two_level",
        "LGSP_TOPIC_PREFIX": f"t{RUN_ID}v2",
        "LGSP_SCHEMA_PREFIX": f"t{RUN_ID}_v2_",
    }
    await namespace(env["LGSP_TOPIC_PREFIX"], env["LGSP_SCHEMA_PREFIX"])
    procs = [
        service("routing", env, run_dir / "logs-v2", port=18092).start(),
        service("intake", env, run_dir / "logs-v2", port=18091).start(),
        service("documents", env, run_dir / "logs-v2", port=18093).start(),
    ]
    async with platform_http() as http:  # what the portal names, uploaded to this deployment's store
        await upload_component_files(http, procs[1].url, "two_level")
    yield procs[1].url, procs[0].url, procs[2].url
    for p in procs:
        p.stop()


async def test_commune_to_province_and_back(two_level, platform):
    intake_url, routing_url, documents_url = two_level
    async with platform_http(timeout=15) as http:
        agencies = platform.agencies(http, routing_url, documents_url)  # the province decides: a signed decision
        # a district no longer exists: the three-level commune code is unknown here
        old = await http.post(f"{intake_url}/v1/dossiers", json=submission("2.000286"))
        assert old.status_code == 422 and "unknown_agency" in [r["code"] for r in old.json()["reasons"]]

        r = await http.post(
            f"{intake_url}/v1/dossiers", json=submission("2.000286", agency_code=COMMUNE_2L, variant="two_level")
        )
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        d = await eventually(lambda: agencies.dossier(code), what="routing to start the workflow")
        assert [s["level"] for s in d["steps"]] == ["commune", "province", "province", "commune"]
        await agencies.step_through(code)
        assert (await agencies.act(code, "return", COMMUNE_2L, method="postal")).json()["status"] == "returned"
