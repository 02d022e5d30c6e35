"""Token validation against the local stack's real identity provider: what a resource server
must refuse. Tokens come from Keycloak; the validator is the one every service runs."""

from __future__ import annotations

import base64
import json

import pytest

from shared.access import AccessDenied, TokenValidator
from tests.helpers import IDENTITIES


@pytest.fixture(scope="module")
def issuer(local_stack) -> str:
    return local_stack.issuer


async def test_a_fresh_token_names_its_client_roles_and_agency(issuer):
    caller = await TokenValidator(issuer, "lgsp").validate(await IDENTITIES.official("000.21.12.H40").token())
    assert caller.roles == {"official"} and caller.agency == "000.21.12.H40"
    assert caller.username == "official-000.21.12.h40" and caller.client_id == "lgsp-local-tools" and caller.is_person
    machine = await TokenValidator(issuer, "lgsp").validate(await IDENTITIES.client("counter-ninh-hai").token())
    assert machine.client_id == "counter-ninh-hai" and machine.agency == "000.21.12.H40" and not machine.is_person


async def _refusal(validator: TokenValidator, token: str) -> str:
    with pytest.raises(AccessDenied) as refused:
        await validator.validate(token)
    assert refused.value.status == 401
    return refused.value.reason


async def test_expired_future_foreign_and_tampered_tokens_are_refused(issuer):
    token = await IDENTITIES.operator.token()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    lifetime = claims["exp"] - claims["iat"]
    # time is injected: the same token an hour later, and seen from a clock far behind the issuer's
    later = TokenValidator(issuer, "lgsp", leeway_s=30, wall_time=lambda: claims["exp"] + 31)
    assert "expired" in await _refusal(later, token)
    assert (
        await TokenValidator(issuer, "lgsp", leeway_s=30, wall_time=lambda: claims["exp"] + 29).validate(token)
    ).username == "operator"
    earlier = TokenValidator(issuer, "lgsp", leeway_s=30, wall_time=lambda: claims["iat"] - lifetime)
    assert "not valid yet" in await _refusal(earlier, token)
    assert "audience" in await _refusal(TokenValidator(issuer, "another-platform"), token)
    assert "another issuer" in await _refusal(TokenValidator(issuer.replace("127.0.0.1", "localhost"), "lgsp"), token)
    header, payload, signature = token.split(".")
    forged_claims = {**claims, "realm_access": {"roles": ["operator", "official"]}}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    assert "signature" in await _refusal(TokenValidator(issuer, "lgsp"), f"{header}.{forged}.{signature}")
    assert "not a JWT" in await _refusal(TokenValidator(issuer, "lgsp"), "opaque-string")
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "x"}).encode()).rstrip(b"=").decode()
    assert "algorithm" in await _refusal(TokenValidator(issuer, "lgsp"), f"{unsigned}.{payload}.")


async def test_a_token_kept_as_verified_is_still_judged_on_time_at_every_use(issuer):
    token = await IDENTITIES.operator.token()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    now = [claims["iat"] + 1]
    validator = TokenValidator(issuer, "lgsp", leeway_s=30, wall_time=lambda: now[0])
    assert (await validator.validate(token)).username == "operator"
    assert (await validator.validate(token)).username == "operator"  # the kept verification
    now[0] = claims["exp"] + 31  # the same validator, the same token, after its expiry
    assert "expired" in await _refusal(validator, token)
    now[0] = claims["iat"] - (claims["exp"] - claims["iat"])
    assert "not valid yet" in await _refusal(validator, token)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_malformed_tokens_are_refused_with_401_never_an_error(issuer):
    """A header naming ES256 with the realm's RSA key used to raise a TypeError inside the
    validator (a 500 at every service); every malformed token is the caller's fault."""
    token = await IDENTITIES.operator.token()
    header, payload, signature = token.split(".")
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    validator = TokenValidator(issuer, "lgsp")
    assert "not its key's" in await _refusal(validator, f"{_b64({'alg': 'ES256', 'kid': kid})}.{payload}.{signature}")
    assert "not its key's" in await _refusal(validator, f"{_b64({'alg': 'PS256', 'kid': kid})}.{payload}.{signature}")
    for malformed in (
        f"{header}.{payload}",
        f"{header}.!!!.{signature}",
        f"{header}.{_b64({'sub': 1})}.{signature}",
        f"{_b64({'alg': 'RS256', 'kid': kid, 'crit': ['x']})}.{payload}.{signature}",
        f"{_b64({'alg': 'RS256', 'kid': ['a']})}.{payload}.{signature}",
        "a.b.c",
        "...",
        "é.é.é",
    ):
        await _refusal(validator, malformed)


async def test_a_malformed_token_at_a_service_is_401(platform, issuer):
    import httpx

    token = await IDENTITIES.operator.token()
    header, payload, signature = token.split(".")
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    confused = f"{_b64({'alg': 'ES256', 'kid': kid})}.{payload}.{signature}"
    async with httpx.AsyncClient(timeout=15) as http:
        for service in ("intake", "routing", "documents"):
            r = await http.get(
                f"{platform[service].url}/v1/operations", headers={"Authorization": f"Bearer {confused}"}
            )
            assert r.status_code == 401, (service, r.status_code, r.text)
