"""What every HTTP edge needs: a body-size limit, readable 4xx errors, a server span per
request with the trace id returned to the caller, and a health route."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated

import asyncpg
from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind, StatusCode

from shared.access import AccessControl, AccessDenied, ProviderUnavailable, all_routes
from shared.audit import AuditEntry, clean_reason, outcome_of, summary_of_unrecorded, worth_recording
from shared.errors import DomainError
from shared.events import DOSSIER_CODE_MAX
from shared.telemetry import context_from_headers, current_trace_id, tracer

log = logging.getLogger(__name__)

# Path parameters every service takes, bounded like the bodies.
DossierCode = Annotated[
    str, Path(min_length=1, max_length=DOSSIER_CODE_MAX, description="The dossier code, e.g. 000.21.12.H40-261124-0001")
]
AgencyCode = Annotated[str, Path(min_length=1, max_length=35, description="An agency's electronic identifier code")]
FileHash = Annotated[
    str,
    Path(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$", description="The file's SHA-256 (lower-case hex)"),
]


def problem(status: int, title: str, errors: list[dict] | None = None) -> JSONResponse:
    body: dict = {"status": status, "title": title}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes its limit: 413. An HTTPException, so that
    FastAPI passes it on from its body parsing instead of calling it a malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


class BodySizeLimit:
    """Refuses bodies over their limit with 413, whether the size is declared (Content-Length)
    or the body arrives in chunks: the bytes are counted as the route reads them, never
    buffered here. Every route has ``limit``; a path in ``larger`` (an upload) its own."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.limit)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._refuse(limit, scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    async def _refuse(self, limit: int, scope, receive, send):
        response = problem(413, f"request body larger than {limit} bytes")
        await response(scope, receive, send)


def route_of(app: FastAPI, scope) -> tuple[object, dict] | None:
    """The route a request is for and its path parameters, found as the router will."""
    from starlette.routing import Match

    for route in all_routes(app.routes):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child.get("path_params", {})
    return None


class CallerFirst:
    """Refuses anonymous and unauthorised callers before any byte of their body is read: a
    slow or large anonymous upload is answered 401 at once, not after its last byte. The
    token is checked and the caller must hold one of the route's roles; the limits that need
    the body or a look-up (an agency named in it, a dossier's route) stay with ``authorize``,
    which finds the token's check kept."""

    def __init__(self, app, api: FastAPI) -> None:
        self.app, self.api = app, api

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        access: AccessControl | None = getattr(self.api.state, "access", None)
        found = route_of(self.api, scope) if access is not None else None
        entry = access.policy.entry(access.service, scope["method"], found[0].path) if found else None
        if entry is None or entry.public:
            return await self.app(scope, receive, send)  # authorize answers (no policy: 403)
        request = Request(scope)
        try:
            token = await access.token_of(request)
            if not token:
                raise AccessDenied(401, "a bearer token from the platform's identity provider is required")
            caller = await access.validator.validate(token)
            request.state.caller = caller
            if not any(g.role in caller.roles for g in entry.grants):
                roles = sorted({g.role for g in entry.grants})
                raise AccessDenied(
                    403, f"{caller.describe()} may not call this: it needs one of the roles {', '.join(roles)}"
                )
        except AccessDenied as exc:
            scope["route"], scope["path_params"] = found
            return await denial(request, exc)(scope, receive, send)
        except ProviderUnavailable as exc:
            return await provider_unavailable(exc)(scope, receive, send)
        await self.app(scope, receive, send)


def denial(request: Request, exc: AccessDenied) -> JSONResponse:
    """The answer to a refused caller, the reason kept for the audit log."""
    log.info("http.access_denied %s %s %s", exc.status, request.method, request.url.path)
    request.state.refusal = exc.audited_reason
    request.state.denied = True
    response = problem(exc.status, exc.reason)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lgsp"'
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response


def provider_unavailable(exc: ProviderUnavailable) -> JSONResponse:
    log.warning("http.identity_provider_unavailable %s", exc)
    return JSONResponse(
        {"status": 503, "title": f"{exc}; retry shortly"},
        status_code=503,
        media_type="application/problem+json",
        headers={"Retry-After": "2"},
    )


REQUEST_ID_MAX = 100


async def _audit(request: Request, status: int, request_id: str, service_name: str) -> None:
    """The request in the service's audit log, if it changed state or was refused."""
    audit = getattr(request.app.state, "audit", None)
    denied = getattr(request.state, "denied", False)  # by the access policy, whatever the status says
    if audit is None or not (denied or worth_recording(request.method, status)):
        return
    route = request.scope.get("route")
    caller = getattr(request.state, "caller", None)
    at = request.app.state.runtime.clock.now()
    if status == 401 and caller is None:
        recorded, unrecorded = audit.anonymous.admit()
        if unrecorded:
            await audit.record(
                AuditEntry(
                    at=at,
                    service=service_name,
                    method="*",
                    route="*",
                    dossier_code=None,
                    status=401,
                    outcome="denied",
                    reason=summary_of_unrecorded(unrecorded, audit.anonymous.window_s),
                    client_id=None,
                    username=None,
                    agency=None,
                    request_id=request_id,
                    trace_id=None,
                )
            )
        if not recorded:
            return
    await audit.record(
        AuditEntry(
            at=at,
            service=service_name,
            method=request.method,
            route=getattr(route, "path", request.url.path)[:300],
            dossier_code=request.path_params.get("code"),
            status=status,
            outcome="denied" if denied and status != 429 else outcome_of(status),
            reason=clean_reason(getattr(request.state, "refusal", None)),
            client_id=caller.client_id if caller else None,
            username=caller.username if caller else None,
            agency=caller.agency if caller else None,
            request_id=request_id,
            trace_id=current_trace_id(),
        )
    )


def install_edges(
    app: FastAPI,
    service_name: str,
    max_body_bytes: int,
    *,
    larger_bodies: dict[str, int] | None = None,
    callers_first: bool = True,
) -> None:
    """``larger_bodies``: paths that take more than ``max_body_bytes`` (uploads), and how much.
    ``callers_first``: refuse unknown callers before reading their bodies (an API's callers
    carry bearer tokens; the console answers people with pages of its own)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors.append({"field": ".".join(loc) or "body", "reason": err.get("msg", "invalid")})
            if err.get("type") == "json_invalid":
                return problem(400, "request body is not valid JSON", errors)
        return problem(422, "request does not match the expected shape", errors)

    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(OSError)  # refused connections, timeouts
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Not the caller's fault and nothing was recorded: retry with the same Idempotency-Key.
        log.warning("http.database_unavailable %s", type(exc).__name__)
        return JSONResponse(
            {"status": 503, "title": "database unavailable; retry with the same Idempotency-Key"},
            status_code=503,
            media_type="application/problem+json",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(DomainError)
    async def cannot_be_done(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, str(exc), list(exc.errors))

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return problem(413, exc.detail)

    @app.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return denial(request, exc)

    @app.exception_handler(ProviderUnavailable)
    async def identity_provider_unavailable(request: Request, exc: ProviderUnavailable) -> JSONResponse:
        return provider_unavailable(exc)

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(UnicodeEncodeError)
    async def unstorable_text(request: Request, exc: Exception) -> JSONResponse:
        # e.g. a NUL or a lone surrogate in a path or query parameter
        return problem(400, "the request contains characters that are not valid text (NUL or broken Unicode)")

    @app.get("/health", tags=["operations"])
    async def health() -> dict:
        return {"service": service_name, "status": "ok"}

    # outermost last: the span and audit see every answer, callers are known before a body is read
    app.add_middleware(BodySizeLimit, limit=max_body_bytes, larger=larger_bodies)
    if callers_first:
        app.add_middleware(CallerFirst, api=app)
    app.add_middleware(ServerSpan, service_name=service_name)


class ServerSpan:
    """A server span per request, the trace and request ids returned to the caller, and the
    audit entry recorded before the answer leaves. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` would run each request in a task group of its own."""

    def __init__(self, app, service_name: str) -> None:
        self.app, self.service_name = app, service_name

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, route = scope["method"], scope["path"]
        request_id = (headers.get("x-request-id") or "")[:REQUEST_ID_MAX] or str(uuid.uuid4())
        with tracer("lgsp.http").start_as_current_span(
            f"{method} {route}",
            kind=SpanKind.SERVER,
            context=context_from_headers(headers),
            attributes={"http.request.method": method, "url.path": route},
        ) as span:
            ids = [
                (b"x-trace-id", (current_trace_id() or "").encode()),
                (b"x-request-id", request_id.encode("latin-1")),
            ]
            started = False

            async def send_with_ids(message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    span.set_attribute("http.response.status_code", message["status"])
                    message = {**message, "headers": [*message.get("headers", ()), *ids]}
                    await _audit(Request(scope), message["status"], request_id, self.service_name)
                await send(message)

            try:
                await self.app(scope, receive, send_with_ids)
            except Exception as exc:  # noqa: BLE001 - answer 500 with a trace id, never a stack trace
                span.record_exception(exc)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                log.exception("http.unhandled %s %s", method, route)
                if started:
                    raise  # the answer is on its way: nothing more can be said
                await problem(500, "internal error; quote the trace id to the operators")(scope, receive, send_with_ids)
