"""Who may call what, at every service's HTTP edge.

The services are resource servers: each request carries an OAuth2 / OpenID Connect access
token issued by the platform's identity provider (Keycloak on the local stack). ``TokenValidator``
checks it with PyJWT (signature against the issuer's published keys, issuer, audience, expiry
with a small leeway) and turns it into a ``Caller``: the client (``azp``), the person if any,
the roles, and the agency the token says its holder acts for. Each caller has a request quota
(429 with Retry-After beyond it).

What each role may do is data: ``shared/access_policy.yaml`` has one entry per route of every
service, listing grants (a role, and how the caller's agency or identity limits it). A route
without an entry is refused (deny by default), and the test suite fails on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import yaml
from fastapi import Request
from fastapi.routing import APIRoute

from shared.recent import Recent

log = logging.getLogger(__name__)

POLICY_FILE = Path(__file__).resolve().parent / "access_policy.yaml"
LIMITS = ("any", "body_agency", "path_agency", "dossier_agency", "submitter")
ALGORITHMS = ["RS256", "PS256", "ES256"]
VERIFIED_TOKENS_KEPT = 1024  # tokens of the callers seen lately (each entry a few hundred bytes)


class AccessDenied(Exception):
    """401 (no valid token), 403 (a valid caller without the right) or 429 (over its quota,
    ``retry_after_s``); ``reason`` says which."""

    def __init__(
        self, status: int, reason: str, retry_after_s: float | None = None, *, audited_reason: str | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s
        # What the audit log keeps when the caller is told less (a 404 that hides a 403).
        self.audited_reason = audited_reason or reason


class ProviderUnavailable(Exception):
    """The identity provider's keys cannot be fetched: 503, not the caller's fault."""


@dataclass(frozen=True)
class Caller:
    client_id: str  # the connected system (OAuth2 client) the token was issued to
    subject: str
    username: str | None  # a person's user name; a machine client's service account otherwise
    roles: frozenset[str]
    agency: str | None  # the agency the caller acts for, from the token only
    name: str | None = None  # a person's full name, as the identity provider has it

    @property
    def display_name(self) -> str:
        """Who acted, as the timeline shows it: the person's name from the identity provider,
        else their account, else the connected system."""
        return self.name or (self.username if self.is_person else None) or self.client_id

    @property
    def is_person(self) -> bool:
        return self.username is not None and not self.username.startswith("service-account-")

    @property
    def quota_key(self) -> str:
        """Whose quota a request counts against: the person (officials share the console's
        client), or the connected system."""
        return f"user:{self.username}" if self.is_person else f"client:{self.client_id}"

    def describe(self) -> str:
        who = self.username if self.is_person else self.client_id
        return f"{who} ({', '.join(sorted(self.roles)) or 'no role'}{'; ' + self.agency if self.agency else ''})"


# ---------------------------------------------------------------- tokens


class TokenValidator:
    """Validates bearer tokens against one issuer. Its keys (JWKS) are fetched on first use and
    again when a token names a key not seen yet (the provider rotated its keys), at most once
    every ``refetch_s`` seconds.

    Expiry is judged on real time (``wall_time``), the identity provider's, even when the
    platform's clock is moved (see shared/clock.py): tokens are a protocol with a party that
    lives in real time."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        wall_time: Callable[[], float] = time.time,
        refetch_s: float = 10.0,
        discovery_url: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.discovery_url = discovery_url or f"{self.issuer}/.well-known/openid-configuration"
        self.audience = audience
        self.leeway_s = leeway_s
        self.wall_time = wall_time
        self.refetch_s = refetch_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        # Tokens whose signature and claims checked out, with their times: a client sends the
        # same token with every request until it expires, and an RSA check costs more than
        # the rest of a small request. Times are judged again on every use.
        self._verified: Recent[str, tuple[Caller, float, float]] = Recent(VERIFIED_TOKENS_KEPT)

    async def _fetch_keys(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                discovery = (await http.get(self.discovery_url)).raise_for_status().json()
                jwks = (await http.get(discovery["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ProviderUnavailable(f"cannot fetch the identity provider's keys: {type(exc).__name__}") from exc
        keys = {}
        for k in jwks.get("keys", ()):
            if k.get("use", "sig") != "sig" or "kid" not in k:
                continue
            try:
                keys[k["kid"]] = jwt.PyJWK(k)
            except jwt.PyJWTError:
                continue  # a key type we do not use (e.g. an encryption key)
        self._keys, self._fetched_at = keys, time.monotonic()

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            async with self._lock:
                if kid not in self._keys and time.monotonic() - self._fetched_at > self.refetch_s:
                    await self._fetch_keys()
        if kid not in self._keys:
            raise AccessDenied(401, "the token is signed with a key the issuer does not publish")
        return self._keys[kid]

    async def validate(self, token: str) -> Caller:
        kept = self._verified.get(token) or self._verified.put(token, await self._verify(token))
        caller, expires, not_before = kept
        now = self.wall_time()
        if expires + self.leeway_s < now:
            raise AccessDenied(401, "the token has expired")
        if not_before - self.leeway_s > now:
            raise AccessDenied(401, "the token is not valid yet")
        return caller

    async def _verify(self, token: str) -> tuple[Caller, float, float]:
        """The token's signature, issuer, audience and type checked; its caller and times."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AccessDenied(401, "the bearer token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise AccessDenied(401, f"the token's algorithm {header.get('alg')!r} is not accepted")
        key = await self._key(str(header.get("kid", "")))
        if header["alg"] != key.algorithm_name:
            # A key is used with its own algorithm only: an ES256 header naming an RSA key is
            # a confusion attempt, not a token (and PyJWT would fail on it with a TypeError).
            raise AccessDenied(401, f"the token's algorithm {header['alg']!r} is not its key's ({key.algorithm_name})")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                # times are checked below against the injected real-time source
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AccessDenied(401, f"the token is not meant for this platform (audience {self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise AccessDenied(401, "the token was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise AccessDenied(401, "the token's signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise AccessDenied(401, f"the token is not valid: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:  # whatever a malformed token trips on: still the caller's
            raise AccessDenied(401, f"the token is malformed ({type(exc).__name__})") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            raise AccessDenied(401, "the token's claims are malformed")
        if claims.get("typ", "Bearer") != "Bearer":
            raise AccessDenied(401, f"a {claims.get('typ')} token is not an access token")
        try:
            agencies = claims.get("agency") or []
            if isinstance(agencies, str):
                agencies = [agencies]
            if len(agencies) > 1:
                raise AccessDenied(403, "the token names more than one agency; an account acts for one")
            caller = Caller(
                client_id=str(claims.get("azp") or claims.get("client_id") or ""),
                subject=claims["sub"],
                username=claims.get("preferred_username"),
                roles=frozenset((claims.get("realm_access") or {}).get("roles") or ()),
                agency=str(agencies[0]) if agencies else None,
                name=str(claims["name"])[:200] if claims.get("name") else None,
            )
        except (TypeError, AttributeError):
            raise AccessDenied(401, "the token's claims are malformed") from None
        try:
            return caller, float(claims["exp"]), float(claims["nbf"] if "nbf" in claims else claims["iat"])
        except (TypeError, ValueError):
            raise AccessDenied(401, "the token's times are not numbers") from None


# ---------------------------------------------------------------- quotas


@dataclass(frozen=True)
class Quota:
    per_second: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> "Quota":
        """``"50/200"``: 50 requests a second, bursts of up to 200."""
        rate, _, burst = text.partition("/")
        quota = cls(float(rate), int(burst or max(1, float(rate))))
        if quota.per_second <= 0 or quota.burst < 1:
            raise ValueError(f"quota {text!r}: the rate must be above 0 and the burst at least 1")
        return quota


class Quotas:
    """A token bucket per caller (per service process: N instances allow N times as much), so
    one misbehaving connector cannot starve the rest. ``monotonic`` is injected for tests."""

    def __init__(
        self,
        default: Quota,
        per_client: dict[str, Quota | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.per_client = per_client or {}  # None: unlimited
        self.monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, caller: Caller) -> float | None:
        """None when the request may go; else the seconds until it may."""
        quota = self.per_client.get(caller.client_id, self.default) if not caller.is_person else self.default
        if quota is None:
            return None
        now = self.monotonic()
        tokens, at = self._buckets.get(caller.quota_key, (float(quota.burst), now))
        tokens = min(float(quota.burst), tokens + (now - at) * quota.per_second)
        if tokens < 1:
            self._buckets[caller.quota_key] = (tokens, now)
            return (1 - tokens) / quota.per_second
        self._buckets[caller.quota_key] = (tokens - 1, now)
        return None


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Grant:
    role: str
    limit: str = "any"


@dataclass(frozen=True)
class Entry:
    route: str  # "METHOD /path/{param}"
    public: bool = False
    grants: tuple[Grant, ...] = ()
    resource: str | None = None  # what the limits dossier_agency / submitter look up
    why: str = ""


@dataclass(frozen=True)
class Resource:
    """What a route acts on, as far as access is concerned."""

    agencies: frozenset[str] = frozenset()
    submitted_by: str | None = None


# service-provided lookups: (request, key from the path) -> Resource, or None when it does not exist
Resolver = Callable[[Request, str], Awaitable[Resource | None]]


@dataclass
class Policy:
    services: dict[str, dict[str, Entry]] = field(default_factory=dict)
    default_quota: Quota = Quota(50, 200)
    client_quotas: dict[str, Quota | None] = field(default_factory=dict)

    def quotas(self, default: str | None = None) -> Quotas:
        """The policy's quotas; ``default`` ("rate/burst") replaces its default one."""
        return Quotas(Quota.parse(default) if default else self.default_quota, self.client_quotas)

    @classmethod
    def load(cls, path: Path = POLICY_FILE) -> "Policy":
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        quotas = raw.pop("quotas", {}) or {}
        services: dict[str, dict[str, Entry]] = {}
        for service, routes in raw.items():
            entries = {}
            for route, spec in routes.items():
                if spec == "public":
                    entries[route] = Entry(route, public=True)
                    continue
                grants = tuple(Grant(**g) for g in spec["grants"])
                for g in grants:
                    if g.limit not in LIMITS:
                        raise ValueError(f"{service} {route}: unknown limit {g.limit!r} (one of {', '.join(LIMITS)})")
                    if g.limit in ("dossier_agency", "submitter") and not spec.get("resource"):
                        raise ValueError(f"{service} {route}: limit {g.limit!r} needs a 'resource'")
                entries[route] = Entry(route, grants=grants, resource=spec.get("resource"), why=spec.get("why", ""))
            services[service] = entries
        clients = {c: None if q == "unlimited" else Quota.parse(q) for c, q in (quotas.get("clients") or {}).items()}
        return cls(services, Quota.parse(quotas.get("default", "50/200")), clients)

    def entry(self, service: str, method: str, path: str) -> Entry | None:
        return self.services.get(service, {}).get(f"{method} {path}")

    def missing(self, service: str, routes: list[tuple[str, str]]) -> list[str]:
        return [f"{m} {p}" for m, p in routes if self.entry(service, m, p) is None]


def all_routes(routes):
    """Every route, including those of included routers (FastAPI keeps them nested; our routers
    carry their prefix themselves and are included without one)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from all_routes(included.routes)
        else:
            yield route


def api_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route a FastAPI app serves, its own docs included."""
    found = []
    for route in all_routes(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


# ---------------------------------------------------------------- enforcement


async def bearer_token(request: Request) -> str | None:
    """The token of an API call: ``Authorization: Bearer <token>``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class AccessControl:
    """What ``authorize`` needs; one per service process, on ``app.state.access``.
    ``token_of`` finds the caller's access token (the console keeps it in a session)."""

    service: str
    policy: Policy
    validator: TokenValidator
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    quotas: Quotas | None = None
    token_of: Callable[[Request], Awaitable[str | None]] = bearer_token


async def authorize(request: Request) -> Caller | None:
    """The dependency every route runs first: find the route's entry (none: 403), check the
    token (401), the role (403) and the limit on the caller's agency or identity (403). The
    caller is left on ``request.state.caller`` for the route."""
    access: AccessControl = request.app.state.access
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    entry = access.policy.entry(access.service, request.method, path)
    if entry is None:
        log.warning("access.no_policy %s %s", request.method, path)
        raise AccessDenied(403, f"no access policy covers {request.method} {path}; denied by default")
    request.state.caller = None
    if entry.public:
        return None
    token = await access.token_of(request)
    if not token:
        raise AccessDenied(401, "a bearer token from the platform's identity provider is required")
    caller = await access.validator.validate(token)
    request.state.caller = caller
    if access.quotas is not None and (wait := access.quotas.take(caller)) is not None:
        raise AccessDenied(429, f"{caller.describe()} is over its request quota; retry in {wait:.1f} s", wait)
    # Unlimited grants first: a caller who holds one needs no look-up.
    held = sorted((g for g in entry.grants if g.role in caller.roles), key=lambda g: g.limit != "any")
    if not held:
        roles = sorted({g.role for g in entry.grants})
        raise AccessDenied(403, f"{caller.describe()} may not call this: it needs one of the roles {', '.join(roles)}")
    reasons = []
    for grant in held:
        reason = await _limit_refuses(grant.limit, caller, request, entry, access)
        if reason is None:
            return caller
        reasons.append(reason)
    why = f"{caller.describe()}: {'; '.join(dict.fromkeys(reasons))}"
    if all(g.limit in RESOURCE_LIMITS for g in held):
        # Refused for a resource that exists: answered exactly as one that does not, so that
        # codes cannot be probed; the audit log keeps the real reason.
        raise AccessDenied(404, _unseen(entry, request), audited_reason=why)
    raise AccessDenied(403, why)


RESOURCE_LIMITS = ("dossier_agency", "submitter")


def _resource_key(request: Request) -> str | None:
    key = next(iter(request.path_params.values()), None)
    return None if key is None else str(key)


def _unseen(entry: Entry, request: Request) -> str:
    return f"no {entry.resource} {_resource_key(request)!r} that this caller may see"


async def _limit_refuses(
    limit: str, caller: Caller, request: Request, entry: Entry, access: AccessControl
) -> str | None:
    """None when the limit lets the caller through, else why not. A resource the limit must
    look up and cannot find is refused (404) whatever the method: letting it through would
    let a state-changing call act on something created between this check and the action."""
    if limit == "any":
        return None
    if limit == "path_agency":
        named = request.path_params.get("agency_code")
        return (
            None
            if caller.agency and named == caller.agency
            else f"acts for {caller.agency or 'no agency'}, not {named}"
        )
    if limit == "body_agency":
        try:
            body = await request.json()
        except ValueError:
            return None  # not JSON: the route refuses it (400) before doing anything
        named = body.get("agency_code") if isinstance(body, dict) else None
        if named is None:
            return "the body must name the acting agency (agency_code)"
        return (
            None
            if caller.agency and named == caller.agency
            else f"acts for {caller.agency or 'no agency'}, not {named}"
        )
    resolver = access.resolvers.get(entry.resource or "")
    if resolver is None:
        return f"no way to look up the {entry.resource} this route acts on"
    key = _resource_key(request)
    resource = await resolver(request, key) if key is not None else None
    if resource is None:
        raise AccessDenied(404, _unseen(entry, request))
    if limit == "dossier_agency":
        return (
            None
            if caller.agency and caller.agency in resource.agencies
            else f"the {entry.resource} is not one of {caller.agency or 'its agency'}'s"
        )
    if limit == "submitter":
        return (
            None
            if resource.submitted_by and resource.submitted_by == caller.client_id
            else f"the {entry.resource} was not submitted by {caller.client_id}"
        )
    return f"unknown limit {limit!r}"
