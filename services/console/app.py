"""The console's wiring: sign-in, sessions, the sources it reads, templates, and every page
behind the access policy. ``python -m services.console`` runs it.

Unlike the other services it owns no data: no database, no topic. It reads the services' HTTP
APIs as the signed-in person, so what a person sees is what the services let them see."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.console import views
from services.console.pages import router
from services.console.settings import ConsoleSettings
from services.console.signin import COOKIE, OidcClient, Sessions
from services.console.sources import Platform
from shared.access import (
    AccessControl,
    AccessDenied,
    Policy,
    ProviderUnavailable,
    TokenValidator,
    api_routes,
    authorize,
)
from shared.clock import Clock, clock_from_env
from shared.http import install_edges
from shared.reference import Reference, load_reference
from shared.scorecard import percent
from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing

HERE = Path(__file__).parent
DEFAULT_PORT = 8085


@dataclass
class Console:
    settings: ConsoleSettings
    clock: Clock
    reference: Reference
    templates: Jinja2Templates
    platform: Platform
    sessions: Sessions

    @property
    def redirect_uri(self) -> str:
        """Where the identity provider sends people back: from configuration only."""
        base = self.settings.console_url or f"http://127.0.0.1:{self.settings.http_port}"
        return f"{base}/auth/callback"


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=HERE / "templates")
    t.env.filters.update(local=views.local, status_vi=views.status_vi, percent=percent, vi=views.vi)
    t.env.globals.update(level_vi=views.LEVEL_VI)
    return t


async def session_token(request: Request) -> str | None:
    """The signed-in person's access token, from the session the cookie names."""
    session = await request.app.state.console.sessions.current(request.cookies.get(COOKIE))
    request.state.session = session
    return session.access_token if session else None


class SecurityHeaders:
    """Every page says what a browser may do with it: scripts and styles from the console only
    (style attributes draw the meters and the trace bars), never framed by another site (no
    clickjacking of the re-drive), forms sent to the console or the identity provider only."""

    def __init__(self, app, issuer: str) -> None:
        self.app = app
        origin = "/".join(issuer.split("/")[:3])
        policy = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"connect-src 'self'; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'; "
            "object-src 'none'"
        )
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: ConsoleSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or ConsoleSettings(service_name="console", http_port=DEFAULT_PORT)
    http = httpx.AsyncClient(timeout=10)
    discovery = settings.oidc_discovery_url or f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"
    urls = {
        "intake": settings.intake_url,
        "routing": settings.routing_url,
        "postal": settings.postal_url,
        "notify": settings.notify_url,
        "documents": settings.documents_url,
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        setup_logging(settings.service_name)
        setup_tracing(settings.service_name, settings.traces_path, settings.otlp_endpoint)
        yield
        await http.aclose()
        shutdown_tracing()

    app = FastAPI(
        title="LGSP console",
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        description="Bảng điều khiển cho lãnh đạo và cán bộ vận hành: server-rendered pages that read "
        "the services' APIs as the signed-in person.",
    )
    app.state.console = Console(
        settings=settings,
        clock=clock or clock_from_env(),
        reference=load_reference(settings.reference_variant),
        templates=templates(),
        platform=Platform(http, urls, settings.traces_path),
        sessions=Sessions(OidcClient(http, discovery), settings.console_sessions_max),
    )
    install_edges(app, settings.service_name, settings.max_body_bytes, callers_first=False)
    app.add_middleware(SecurityHeaders, issuer=settings.oidc_issuer)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    policy = Policy.load()
    app.state.access = AccessControl(
        settings.service_name,
        policy,
        TokenValidator(settings.oidc_issuer, settings.oidc_audience, settings.token_leeway_s, discovery_url=discovery),
        quotas=policy.quotas(settings.quota_default),
        token_of=session_token,
    )
    if missing := policy.missing(settings.service_name, api_routes(app)):
        raise RuntimeError(f"console routes without an access policy: {missing}")

    # People get pages, not problem documents: no session -> sign in; no right -> say why.
    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied):
        request.state.refusal = exc.audited_reason
        request.state.denied = True
        if exc.status == 401 and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(str(request.url_for("sign_in").include_query_params(next=target)), status_code=303)
        title = {401: "Cần đăng nhập", 403: "Không có quyền", 404: "Không tìm thấy", 429: "Quá nhiều yêu cầu"}.get(
            exc.status, "Từ chối"
        )
        return app.state.console.templates.TemplateResponse(
            request,
            "problem.html",
            {
                "title": title,
                "reason": exc.reason,
                "session": getattr(request.state, "session", None),
                "caller": getattr(request.state, "caller", None),
                "roles": frozenset(),
            },
            status_code=exc.status,
        )

    @app.exception_handler(ProviderUnavailable)
    async def provider_unavailable(request: Request, exc: ProviderUnavailable) -> HTMLResponse:
        return app.state.console.templates.TemplateResponse(
            request,
            "problem.html",
            {
                "title": "Máy chủ định danh không trả lời",
                "reason": str(exc),
                "session": None,
                "caller": None,
                "roles": frozenset(),
            },
            status_code=503,
        )

    return app
