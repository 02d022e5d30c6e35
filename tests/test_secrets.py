"""Secrets: none has a usable default outside the explicit local profile, a service started
without one refuses to start and names the variable, and the carrier's webhook key can be
rotated without downtime (the old and the new key are accepted together)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from ops.processes import service
from ops.simulators.carrier import sign
from ops.stack import REPO_ROOT
from services.postal.settings import PostalSettings
from services.postal.webhooks import WebhookRefused, verify
from shared.settings import MissingSecret
from tests.helpers import IDENTITIES, platform_http


def test_no_secret_has_a_default_outside_the_local_profile():
    deployed = PostalSettings(service_name="postal", profile="deployed", carrier_webhook_secret=None)
    with pytest.raises(MissingSecret, match="LGSP_CARRIER_WEBHOOK_SECRET is not set"):
        deployed.secret("carrier_webhook_secret")
    with pytest.raises(MissingSecret, match="LGSP_CARRIER_WEBHOOK_SECRET.*LGSP_PD_KEYS"):
        deployed.require("carrier_webhook_secret", "pd_keys")  # one error names every missing secret
    copied = PostalSettings(service_name="postal", profile="deployed", carrier_webhook_secret="local-carrier-secret")
    with pytest.raises(MissingSecret, match="public value"):
        copied.secret("carrier_webhook_secret")
    assert (
        PostalSettings(profile="local", carrier_webhook_secret=None).secret("carrier_webhook_secret")
        == "local-carrier-secret"
    )
    real = PostalSettings(profile="deployed", carrier_webhook_secret="k-2026", carrier_webhook_secret_previous="k-2025")
    assert real.secrets("carrier_webhook_secret") == ["k-2026", "k-2025"]
    assert "k-2026" not in repr(real)  # never printed with the settings


@pytest.mark.parametrize(
    "name, variable",
    [
        ("postal", "LGSP_CARRIER_WEBHOOK_SECRET"),
        ("intake", "LGSP_PORTAL_CLIENT_SECRET"),
        ("documents", "LGSP_AXIS_KEY"),
    ],
)
def test_a_service_without_its_secret_refuses_to_start_and_names_it(name, variable):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGSP_") or k == "LGSP_CLOCK_OFFSET_S"}
    run = subprocess.run(
        [sys.executable, "-m", f"services.{name}"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert f"{name} refuses to start" in run.stderr and variable in run.stderr


def test_the_previous_webhook_key_may_not_be_the_public_local_one_outside_the_local_profile():
    """Rotating "from" the local stack's public key used to leave it accepted for good."""
    deployed = PostalSettings(
        service_name="postal",
        profile="deployed",
        carrier_webhook_secret="k-2026",
        carrier_webhook_secret_previous="local-carrier-secret",
    )
    with pytest.raises(
        MissingSecret, match="LGSP_CARRIER_WEBHOOK_SECRET_PREVIOUS is set to the local stack's public value"
    ):
        deployed.secrets("carrier_webhook_secret")
    with pytest.raises(MissingSecret, match="LGSP_CARRIER_WEBHOOK_SECRET_PREVIOUS"):
        deployed.require("carrier_webhook_secret")  # the service refuses to start
    local = PostalSettings(
        profile="local", carrier_webhook_secret=None, carrier_webhook_secret_previous="local-carrier-secret"
    )
    assert local.secrets("carrier_webhook_secret") == ["local-carrier-secret", "local-carrier-secret"]


async def test_a_signature_header_that_is_not_ascii_is_refused_not_an_error(platform, clock):
    ts = str(int(clock.now().timestamp()))
    async with platform_http(IDENTITIES.carrier) as http:
        for timestamp, signature in ((ts.encode(), "é".encode("utf-8") * 32), ("١٧٩".encode("utf-8"), b"ab" * 32)):
            r = await http.post(
                f"{platform['postal'].url}/v1/carrier/webhooks",
                content=b"{}",
                headers={
                    "content-type": "application/json",
                    "X-Carrier-Timestamp": timestamp,
                    "X-Carrier-Signature": signature,
                },
            )
            assert r.status_code == 401, r.text
            assert "ASCII" in r.json()["title"]


def test_verify_accepts_the_current_and_the_previous_key_only():
    body, ts = b'{"event_id": "e"}', "1790000000"
    for key in ("new-key", "old-key"):
        verify(["new-key", "old-key"], ts, sign(ts, body, key.encode()), body, 300, now=1790000000)
    with pytest.raises(WebhookRefused, match="bad signature"):
        verify(["new-key", "old-key"], ts, sign(ts, body, b"older-key"), body, 300, now=1790000000)


async def test_rotating_the_webhook_key_without_downtime(test_env, topics, run_dir, clock):
    # The carrier still signs with the key in use (the local one); the new key is set and the
    # old one kept as previous, so both are accepted until the carrier has switched.
    env = {
        **test_env,
        "LGSP_CARRIER_WEBHOOK_SECRET": "rotated-2026-key",
        "LGSP_CARRIER_WEBHOOK_SECRET_PREVIOUS": "local-carrier-secret",
    }
    postal = service("postal", env, run_dir / "logs-postal-rotation", port=18086).start()
    try:
        async with platform_http(IDENTITIES.carrier, timeout=10) as http:  # the carrier's token, and its HMAC
            body = json.dumps(
                {"event_id": str(uuid.uuid4()), "reference": str(uuid.uuid4()), "status": "delivered"}
            ).encode()
            ts = str(int(clock.now().timestamp()))
            answers = {}
            for key in ("rotated-2026-key", "local-carrier-secret", "some-other-key"):
                r = await http.post(
                    f"{postal.url}/v1/carrier/webhooks",
                    content=body,
                    headers={"X-Carrier-Timestamp": ts, "X-Carrier-Signature": sign(ts, body, key.encode())},
                )
                answers[key] = r.status_code
    finally:
        postal.stop()
    # 404: signature accepted, no such shipment; 401: refused
    assert answers == {"rotated-2026-key": 404, "local-carrier-secret": 404, "some-other-key": 401}
