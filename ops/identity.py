"""Who calls the platform: the identity provider's realm, and tokens for the platform's own
clients (demo, bench, chaos, simulators, tests).

The realm (``shared/reference/identity/lgsp-realm.json``) is generated from the reference
agencies by ``lgsp realm`` and kept with the reference data; a test fails when the file and
this generator disagree. It holds:

- **machine clients** (OAuth2 client credentials): the national portal's connector, the
  provincial portal, a commune counter's software, the carrier (BCCI), and the platform's own
  driver (demo, bench, chaos: submits like a portal, reads like an operator);
- **people** (OpenID Connect, signed in through ``lgsp-console``): one official per agency
  of both reference variants, a provincial manager, a district manager and an operator;
- roles ``portal``, ``counter``, ``official``, ``manager``, ``operator``, ``carrier``; an
  agency is a group named by its code, carried in the token's ``agency`` claim.

Passwords and client secrets in that file are the local stack's public ones
(``local_secret``), usable only where ``LGSP_PROFILE=local``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.reference.catalogue import catalogue_for

REALM = "lgsp"
AUDIENCE = "lgsp"  # every service accepts tokens minted for the platform
REALM_FILE = Path(__file__).resolve().parent.parent / "shared/reference/identity/lgsp-realm.json"
STAFF_FILE = REALM_FILE.parent / "staff.json"  # who to tell at each agency (notify), from the same people
ROLES = {
    "portal": "A public-service portal: submits dossiers, reads those it submitted",
    "counter": "A one-stop counter's software: submits and reads for its own agency",
    "official": "An agency's official: acts on the steps its agency holds, reads its dossiers",
    "manager": "A manager: reports, and the work queues of their agency",
    "operator": "The platform's operators: every operational view",
    "carrier": "The public postal service (BCCI): reports shipments' progress",
}
PROVINCE = "000.00.00.H40"
DISTRICT = "000.00.12.H40"  # huyện Hoa Lư, above the commune
COMMUNE = "000.21.12.H40"


@dataclass(frozen=True)
class MachineClient:
    client_id: str
    name: str
    roles: tuple[str, ...]
    agency: str | None = None


MACHINE_CLIENTS = (
    MachineClient("national-portal", "Cổng Dịch vụ công quốc gia (connector)", ("portal",)),
    MachineClient("provincial-portal", "Cổng Dịch vụ công tỉnh Ninh Bình", ("portal",)),
    MachineClient("counter-ninh-hai", "Phần mềm một cửa xã Ninh Hải", ("counter",), COMMUNE),
    MachineClient(
        "counter-province-centre",
        "Phần mềm một cửa Trung tâm Phục vụ hành chính công tỉnh",
        ("counter",),
        "000.00.01.H40",
    ),
    MachineClient("carrier-bcci", "Bưu điện (dịch vụ bưu chính công ích)", ("carrier",)),
    MachineClient("lgsp-driver", "Demo, bench and chaos driver", ("portal", "operator", "manager")),
)
CONSOLE_CLIENT = "lgsp-console"  # people sign in through it, in the browser (code flow with PKCE)
CONSOLE_PORTS = (8085, 18085)  # the console of the demo and of the tests (services/console)
CLI_CLIENT = "lgsp-cli"  # people sign in to the command line with the device authorisation grant
# The local stack's tools (demo, bench, chaos, tests) sign the sample people in by password,
# unattended; this client exists in the local realm only and is never created elsewhere.
LOCAL_TOOLS_CLIENT = "lgsp-local-tools"


def official_username(agency_code: str) -> str:
    return f"official-{agency_code.lower()}"


MANAGERS = {"manager-province": PROVINCE, "manager-district": DISTRICT}
OPERATOR_USER = "operator"


def local_secret(name: str) -> str:
    """The local stack's public password or client secret of ``name``."""
    return f"local-{name}"


# ---------------------------------------------------------------- the realm


def agency_names() -> dict[str, str]:
    """Every reference agency of both variants: code -> name."""
    return _agencies()


def _agencies() -> dict[str, str]:
    names: dict[str, str] = {}
    for variant in ("three_level", "two_level"):
        for code, agency in catalogue_for(variant).agencies.items():
            names.setdefault(code, agency.name)
    return dict(sorted(names.items()))


def _mappers() -> list[dict]:
    """Every token says it is for the platform and which agency its holder acts for."""
    return [
        {
            "name": "audience",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {"included.custom.audience": AUDIENCE, "access.token.claim": "true", "id.token.claim": "false"},
        },
        {
            "name": "agency",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {
                "claim.name": "agency",
                "full.path": "false",
                "access.token.claim": "true",
                "id.token.claim": "true",
                "userinfo.token.claim": "true",
            },
        },
    ]


def mailbox(username: str) -> str:
    """A person's work mailbox on the sample realm."""
    return f"{username}@lgsp.example.vn"


def _staff_entry(username: str) -> dict:
    return {"username": username, "mailbox": mailbox(username)}


def staff() -> dict:
    """The staff directory (shared/staff.py): for each agency, its officials, and the manager
    of the agency or of its nearest parent that has one."""
    parents: dict[str, str | None] = {}
    for variant in ("three_level", "two_level"):
        for code, agency in catalogue_for(variant).agencies.items():
            parents.setdefault(code, agency.parent)
    manager_of = {agency: username for username, agency in MANAGERS.items()}
    directory = {}
    for code in sorted(parents):
        chain, at = [], code
        while at is not None and at not in chain:
            chain.append(at)
            at = parents.get(at)
        manager = next((manager_of[a] for a in chain if a in manager_of), None)
        directory[code] = {
            "officials": [_staff_entry(official_username(code))],
            "managers": [_staff_entry(manager)] if manager else [],
        }
    return directory


def staff_json() -> str:
    return json.dumps(staff(), ensure_ascii=False, indent=1) + "\n"


def _person(username: str, first: str, last: str, roles: list[str], agency: str | None) -> dict:
    last = last.replace(" (", ", ").replace(")", "")  # Keycloak refuses brackets in a person's name
    return {
        "username": username,
        "enabled": True,
        "emailVerified": True,
        "firstName": first,
        "lastName": last,
        "email": mailbox(username),
        "realmRoles": roles,
        "groups": [agency] if agency else [],
        "credentials": [{"type": "password", "value": local_secret(username), "temporary": False}],
    }


def realm() -> dict:
    agencies = _agencies()
    clients = [
        {
            "clientId": c.client_id,
            "name": c.name,
            "enabled": True,
            "publicClient": False,
            "secret": local_secret(c.client_id),
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "protocolMappers": _mappers(),
        }
        for c in MACHINE_CLIENTS
    ]
    consoles = [f"http://127.0.0.1:{port}" for port in CONSOLE_PORTS]
    clients.append(
        {
            "clientId": CONSOLE_CLIENT,
            "name": "LGSP console",
            "enabled": True,
            "publicClient": True,
            "standardFlowEnabled": True,
            "directAccessGrantsEnabled": False,
            # exact addresses, no wildcard: a code goes back to the console's callback and nowhere else
            "redirectUris": [f"{c}/auth/callback" for c in consoles],
            "webOrigins": ["+"],
            "attributes": {
                "pkce.code.challenge.method": "S256",
                "post.logout.redirect.uris": "##".join(f"{c}/signed-out" for c in consoles),
            },
            "protocolMappers": _mappers(),
        }
    )
    clients.append(
        {
            "clientId": CLI_CLIENT,
            "name": "LGSP command line",
            "enabled": True,
            "publicClient": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "attributes": {"oauth2.device.authorization.grant.enabled": "true"},
            "protocolMappers": _mappers(),
        }
    )
    clients.append(
        {
            "clientId": LOCAL_TOOLS_CLIENT,
            "name": "Local stack tools (demo, bench, tests): never in a deployed realm",
            "enabled": True,
            "publicClient": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": True,
            "protocolMappers": _mappers(),
        }
    )
    users = [
        {
            "username": f"service-account-{c.client_id}",
            "enabled": True,
            "serviceAccountClientId": c.client_id,
            "realmRoles": list(c.roles),
            "groups": [c.agency] if c.agency else [],
        }
        for c in MACHINE_CLIENTS
    ]
    users += [_person(official_username(code), "Cán bộ", name, ["official"], code) for code, name in agencies.items()]
    users += [_person(u, "Lãnh đạo", agencies[a], ["manager"], a) for u, a in MANAGERS.items()]
    users.append(_person(OPERATOR_USER, "Vận hành", "LGSP", ["operator"], None))
    return {
        "realm": REALM,
        "enabled": True,
        "sslRequired": "none",
        "displayName": "LGSP Ninh Bình (local)",
        "accessTokenLifespan": 900,
        "registrationAllowed": False,
        # a password is not guessed without limit: after 10 failures the account waits, one
        # more minute for each further failure up to 15, and failures are forgotten after 12 h
        "bruteForceProtected": True,
        "permanentLockout": False,
        "failureFactor": 10,
        "waitIncrementSeconds": 60,
        "maxFailureWaitSeconds": 900,
        "maxDeltaTimeSeconds": 43200,
        "quickLoginCheckMilliSeconds": 1000,
        "minimumQuickLoginWaitSeconds": 60,
        "roles": {"realm": [{"name": n, "description": d} for n, d in ROLES.items()]},
        "groups": [{"name": code, "attributes": {"name": [name]}} for code, name in agencies.items()],
        "clients": clients,
        "users": users,
    }


def realm_json() -> str:
    return json.dumps(realm(), ensure_ascii=False, indent=1) + "\n"


def write_realm(path: Path = REALM_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(realm_json(), encoding="utf-8")
    STAFF_FILE.write_text(staff_json(), encoding="utf-8")
    return path


# ---------------------------------------------------------------- tokens for our own clients


def issuer_url() -> str:
    return os.environ.get(
        "LGSP_OIDC_ISSUER", f"http://127.0.0.1:{os.environ.get('LGSP_KEYCLOAK_PORT', '58080')}/realms/{REALM}"
    )


class TokenRefused(RuntimeError):
    """The identity provider refused to issue a token; the message carries its reason."""


class TokenSource(httpx.Auth):
    """A bearer token for one identity, fetched from the provider and reused until shortly
    before it expires. Used as ``auth=`` on an httpx client or a single request.

    Expiry is judged on real time, the provider's own, even when the platform's clock is moved.
    """

    refresh_margin_s = 60

    def __init__(self, form: dict[str, str], issuer: str | None = None) -> None:
        self.form = form
        self.issuer = issuer or issuer_url()
        self._token: str | None = None
        self._expires = 0.0
        self._locks: dict[int, asyncio.Lock] = {}  # one per event loop: the tools run several in turn

    @classmethod
    def client(cls, client_id: str, secret: str | None = None, issuer: str | None = None) -> "TokenSource":
        return cls(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret or _secret_for(client_id),
            },
            issuer,
        )

    @classmethod
    def person(cls, username: str, password: str | None = None, issuer: str | None = None) -> "TokenSource":
        """A sample person of the local realm, signed in by password through the local tools'
        client: for the demo, bench, chaos and tests only (people elsewhere use the console or
        ``device``)."""
        return cls(
            {
                "grant_type": "password",
                "client_id": LOCAL_TOOLS_CLIENT,
                "username": username,
                "password": password or _secret_for(username),
                "scope": "openid",
            },
            issuer,
        )

    @property
    def who(self) -> str:
        return self.form.get("username") or self.form["client_id"]

    def _fresh(self) -> str | None:
        return self._token if self._token and time.time() < self._expires - self.refresh_margin_s else None

    def _keep(self, r: httpx.Response) -> str:
        if r.status_code != 200:
            raise TokenRefused(f"{self.who}: the identity provider answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        self._token, self._expires = body["access_token"], time.time() + float(body.get("expires_in", 60))
        return self._token

    @property
    def _endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    async def token(self) -> str:
        lock = self._locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
        async with lock:  # concurrent first requests share one token request
            if token := self._fresh():
                return token
            with await asyncio.to_thread(self._one_sign_in_at_a_time):
                async with httpx.AsyncClient(timeout=30) as http:
                    return self._keep(await http.post(self._endpoint, data=self.form))

    def token_sync(self) -> str:
        if token := self._fresh():
            return token
        with self._one_sign_in_at_a_time():
            return self._keep(httpx.post(self._endpoint, data=self.form, timeout=30))

    def _one_sign_in_at_a_time(self) -> contextlib.AbstractContextManager:
        """Held while a person signs in by password. The realm's brute-force protection refuses
        a person's concurrent sign-ins (all but one get "invalid credentials"), so processes
        on this machine signing the same sample person in (test runs side by side, a demo and
        a bench) take turns. Clients need no turn: brute-force protection is about people."""
        if self.form.get("grant_type") != "password":
            return contextlib.nullcontext()
        path = Path(tempfile.gettempdir()) / f"lgsp-sign-in-{self.form['username']}.lock"
        handle = path.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle  # closing it releases the lock

    async def async_auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        yield request

    def sync_auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {self.token_sync()}"
        yield request


class DeviceSignIn(TokenSource):
    """A person at the command line, signed in with the OAuth 2.0 device authorisation grant
    (RFC 8628): the command prints an address and a code, the person signs in there in any
    browser (the identity provider's own page, with its brute-force protection), and the
    command's tokens are refreshed from then on. No password passes through the command."""

    def __init__(self, issuer: str | None = None, say=print, wait_s: float = 600.0) -> None:
        super().__init__({"client_id": CLI_CLIENT}, issuer)
        self.say, self.wait_s = say, wait_s

    @property
    def who(self) -> str:
        return "the person at the command line"

    def _keep(self, r: httpx.Response) -> str:
        token = super()._keep(r)
        if refresh := r.json().get("refresh_token"):
            self.form = {"grant_type": "refresh_token", "client_id": CLI_CLIENT, "refresh_token": refresh}
        return token

    def token_sync(self) -> str:
        if token := self._fresh():
            return token
        if "grant_type" in self.form:  # signed in before: refresh
            r = httpx.post(self._endpoint, data=self.form, timeout=30)
            if r.status_code == 200:
                return self._keep(r)
        return self._sign_in()

    async def token(self) -> str:
        return await asyncio.to_thread(self.token_sync)

    def _sign_in(self) -> str:
        r = httpx.post(
            f"{self.issuer}/protocol/openid-connect/auth/device",
            data={"client_id": CLI_CLIENT, "scope": "openid"},
            timeout=30,
        )
        if r.status_code != 200:
            raise TokenRefused(f"the identity provider refused a device sign-in ({r.status_code}): {r.text[:300]}")
        grant = r.json()
        self.say(
            f"Sign in at {grant.get('verification_uri_complete') or grant['verification_uri']} "
            f"(code {grant['user_code']}); waiting…"
        )
        interval = float(grant.get("interval", 5))
        deadline = time.monotonic() + min(float(grant.get("expires_in", 600)), self.wait_s)
        while time.monotonic() < deadline:
            time.sleep(interval)
            t = httpx.post(
                self._endpoint,
                timeout=30,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "client_id": CLI_CLIENT,
                    "device_code": grant["device_code"],
                },
            )
            if t.status_code == 200:
                return self._keep(t)
            error = t.json().get("error") if t.headers.get("content-type", "").startswith("application/json") else None
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                raise TokenRefused(f"the device sign-in ended: {error or t.status_code}")
        raise TokenRefused("the device sign-in was not completed in time")


def _secret_for(name: str) -> str:
    """``LGSP_SECRET_<NAME>`` (dots and dashes as underscores), or the local stack's public one."""
    variable = "LGSP_SECRET_" + name.upper().replace("-", "_").replace(".", "_")
    if os.environ.get(variable):
        return os.environ[variable]
    if os.environ.get("LGSP_PROFILE") == "local":
        return local_secret(name)
    raise TokenRefused(f"{variable} is not set (a secret has no default outside LGSP_PROFILE=local)")


class Identities:
    """The identities the platform's own tools act as, one token source each, made once."""

    def __init__(self, issuer: str | None = None) -> None:
        self.issuer = issuer
        self._sources: dict[tuple[str, str], TokenSource] = {}

    def client(self, client_id: str) -> TokenSource:
        key = ("client", client_id)
        if key not in self._sources:
            self._sources[key] = TokenSource.client(client_id, issuer=self.issuer)
        return self._sources[key]

    def person(self, username: str) -> TokenSource:
        key = ("person", username)
        if key not in self._sources:
            self._sources[key] = TokenSource.person(username, issuer=self.issuer)
        return self._sources[key]

    def official(self, agency_code: str) -> TokenSource:
        return self.person(official_username(agency_code))

    def counter(self, agency_code: str) -> TokenSource:
        """The one-stop counter software of an agency: the only caller that may record a receipt
        time earlier than now (a dossier entered after an outage)."""
        client = next((c.client_id for c in MACHINE_CLIENTS if "counter" in c.roles and c.agency == agency_code), None)
        if client is None:
            raise LookupError(f"no counter client for agency {agency_code} in the realm")
        return self.client(client)

    @property
    def driver(self) -> TokenSource:
        return self.client("lgsp-driver")

    @property
    def operator(self) -> TokenSource:
        return self.person(OPERATOR_USER)

    @property
    def at_the_command_line(self) -> TokenSource:
        """Whoever runs an operator's command: on the local stack its sample operator; elsewhere
        the person, signed in with the device grant (no password through the command line)."""
        if os.environ.get("LGSP_PROFILE") == "local":
            return self.operator
        key = ("device", "")
        if key not in self._sources:
            self._sources[key] = DeviceSignIn(self.issuer)
        return self._sources[key]

    @property
    def carrier(self) -> TokenSource:
        return self.client("carrier-bcci")


IDENTITIES = Identities()  # the tools' shared cache of tokens (a process fetches each once)


def main(argv: list[str]) -> int:
    """`lgsp realm [--check]`: write the realm file from the reference agencies, or check it."""
    if argv and argv[0] == "--check":
        same = all(
            f.exists() and f.read_text(encoding="utf-8") == text()
            for f, text in ((REALM_FILE, realm_json), (STAFF_FILE, staff_json))
        )
        print(
            "realm and staff files are up to date"
            if same
            else "the realm or staff file differs from the generator: run `lgsp realm`"
        )
        return 0 if same else 1
    print(f"wrote {write_realm()}")
    return 0
