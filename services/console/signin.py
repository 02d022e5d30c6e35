"""Signing people in: OpenID Connect authorization code flow with PKCE against the platform's
identity provider (client ``lgsp-console``), and the server-side sessions that keep their
tokens.

The browser only ever holds a random session id (an HttpOnly, SameSite=Lax cookie); the
access and refresh tokens stay in this process, and every read of the other services is made
with the person's own access token, so each service applies its own access policy to them.
Sessions live in memory: a restarted console asks people to sign in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt

CLIENT_ID = "lgsp-console"
COOKIE = "lgsp_console"
LOGIN_TTL_S = 600  # a sign-in started but not finished is forgotten after this long
REFRESH_MARGIN_S = 30


class SignInFailed(Exception):
    """The identity provider refused the code or the refresh; the message says why."""


@dataclass
class Session:
    id: str
    csrf: str  # every form that changes state carries it
    access_token: str
    refresh_token: str | None
    expires_at: float  # wall time
    username: str
    name: str


SIGN_IN_COOKIE = "lgsp_console_signin"  # binds a sign-in to the browser that started it


@dataclass(frozen=True)
class PendingSignIn:
    verifier: str
    redirect_uri: str
    next_path: str
    started: float
    browser: str  # SHA-256 of the value of the browser's sign-in cookie


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def safe_next(path: str | None) -> str:
    """Only a path on this console is a place to go back to after signing in."""
    return path if path and path.startswith("/") and not path.startswith("//") and len(path) <= 500 else "/"


class OidcClient:
    """The identity provider, as its discovery document describes it."""

    def __init__(self, http: httpx.AsyncClient, discovery_url: str) -> None:
        self.http = http
        self.discovery_url = discovery_url
        self._meta: dict | None = None

    async def meta(self) -> dict:
        if self._meta is None:
            self._meta = (await self.http.get(self.discovery_url)).raise_for_status().json()
        return self._meta

    async def authorization_url(self, redirect_uri: str, state: str, verifier: str) -> str:
        query = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{(await self.meta())['authorization_endpoint']}?{urlencode(query)}"

    async def _token(self, form: dict) -> dict:
        r = await self.http.post((await self.meta())["token_endpoint"], data={"client_id": CLIENT_ID, **form})
        if r.status_code != 200:
            try:
                reason = r.json().get("error_description") or r.json().get("error")
            except ValueError:
                reason = r.text[:200]
            raise SignInFailed(f"the identity provider answered {r.status_code}: {reason}")
        return r.json()

    async def exchange(self, code: str, pending: PendingSignIn) -> dict:
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> dict:
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def end_session(self, refresh_token: str | None) -> None:
        """Ends the person's session at the provider too (best effort: the console's is gone anyway)."""
        endpoint = (await self.meta()).get("end_session_endpoint")
        if endpoint and refresh_token:
            try:
                await self.http.post(endpoint, data={"client_id": CLIENT_ID, "refresh_token": refresh_token})
            except httpx.HTTPError:
                pass


class Sessions:
    """Signed-in people and sign-ins under way, bounded: the oldest go first."""

    def __init__(self, oidc: OidcClient, max_sessions: int, wall_time: Callable[[], float] = time.time) -> None:
        self.oidc = oidc
        self.max_sessions = max_sessions
        self.wall_time = wall_time
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._pending: OrderedDict[str, PendingSignIn] = OrderedDict()

    async def begin(self, redirect_uri: str, next_path: str | None) -> tuple[str, str]:
        """Where to send the browser to sign in, and the value of the cookie that binds this
        sign-in to it: only the browser that started a sign-in may finish it."""
        now = self.wall_time()
        while self._pending and (
            len(self._pending) >= self.max_sessions or next(iter(self._pending.values())).started < now - LOGIN_TTL_S
        ):
            self._pending.popitem(last=False)
        state, verifier, binding = secrets.token_urlsafe(24), secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        self._pending[state] = PendingSignIn(verifier, redirect_uri, safe_next(next_path), now, _digest(binding))
        return await self.oidc.authorization_url(redirect_uri, state, verifier), binding

    async def finish(self, state: str, code: str, binding: str | None) -> tuple[Session, str]:
        """The provider sent the browser back: trade the code for tokens. Returns the new
        session and where to go next. ``binding``: the browser's sign-in cookie."""
        pending = self._pending.get(state)
        if pending is None or pending.started < self.wall_time() - LOGIN_TTL_S:
            raise SignInFailed("this sign-in is unknown or too old; start again")
        if not binding or not hmac.compare_digest(_digest(binding), pending.browser):
            # a code and state carried to another browser (a crafted link, a stolen redirect)
            raise SignInFailed("this sign-in was started in another browser; start again here")
        del self._pending[state]
        tokens = await self.oidc.exchange(code, pending)
        session = self._keep(
            Session(
                id=secrets.token_urlsafe(32),
                csrf=secrets.token_urlsafe(24),
                access_token="",
                refresh_token=None,
                expires_at=0,
                username="",
                name="",
            ),
            tokens,
        )
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        self._sessions[session.id] = session
        return session, pending.next_path

    def _keep(self, session: Session, tokens: dict) -> Session:
        session.access_token = tokens["access_token"]
        session.refresh_token = tokens.get("refresh_token", session.refresh_token)
        session.expires_at = self.wall_time() + float(tokens.get("expires_in", 60))
        if "id_token" in tokens:
            # only the name to greet the person with; every decision rests on the access token,
            # which each service checks itself
            claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
            session.username = claims.get("preferred_username", "")
            session.name = (
                " ".join(filter(None, (claims.get("given_name"), claims.get("family_name")))) or session.username
            )
        return session

    async def current(self, session_id: str | None) -> Session | None:
        """The session behind a cookie, its access token refreshed when it is about to expire;
        None when there is none or it cannot be refreshed (sign in again)."""
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        if session.expires_at - REFRESH_MARGIN_S < self.wall_time():
            if not session.refresh_token:
                self._sessions.pop(session.id, None)
                return None
            try:
                self._keep(session, await self.oidc.refresh(session.refresh_token))
            except (SignInFailed, httpx.HTTPError):
                self._sessions.pop(session.id, None)
                return None
        return session

    async def end(self, session_id: str | None) -> None:
        session = self._sessions.pop(session_id or "", None)
        if session is not None:
            await self.oidc.end_session(session.refresh_token)
