"""Schemathesis against every service's OpenAPI document: no generated request gets a 5xx."""

import pytest

from ops.fuzz import SERVICES, fuzz


@pytest.mark.parametrize("service", SERVICES)
def test_no_server_errors_from_generated_requests(platform, service):
    rc, out = fuzz(platform[service].url, examples=15)
    assert "generated" in out, out
    assert rc == 0, out
