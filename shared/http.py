"""What every HTTP edge needs: a body-size limit, readable 4xx errors, a server span per
request with the trace id returned to the caller, and a health route."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated

import asyncpg

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind, StatusCode

from shared.access import AccessDenied, ProviderUnavailable
from shared.audit import AuditEntry, clean_reason, outcome_of, worth_recording
from shared.events import DOSSIER_CODE_MAX
from shared.telemetry import context_from_headers, current_trace_id, tracer

log = logging.getLogger(__name__)

# Path parameters every service takes, bounded like the bodies.
DossierCode = Annotated[str, Path(min_length=1, max_length=DOSSIER_CODE_MAX,
                                  description="The dossier code, e.g. 000.21.12.H40-261124-0001")]
AgencyCode = Annotated[str, Path(min_length=1, max_length=35, description="An agency's electronic identifier code")]


def problem(status: int, title: str, errors: list[dict] | None = None) -> JSONResponse:
    body: dict = {"status": status, "title": title}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class BodySizeLimit:
    """Refuses bodies over ``limit`` bytes with 413, whether the size is declared
    (Content-Length) or the body arrives in chunks: the body is read, up to the limit, before
    the route sees it, and then handed on whole."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            seen += len(message.get("body", b""))
            if seen > self.limit:
                return await self._refuse(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect as usual

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        response = problem(413, f"request body larger than {self.limit} bytes")
        await response(scope, receive, send)


REQUEST_ID_MAX = 100


async def _audit(request: Request, status: int, request_id: str, service_name: str) -> None:
    """The request in the service's audit log, if it changed state or was refused."""
    audit = getattr(request.app.state, "audit", None)
    denied = getattr(request.state, "denied", False)  # by the access policy, whatever the status says
    if audit is None or not (denied or worth_recording(request.method, status)):
        return
    route = request.scope.get("route")
    caller = getattr(request.state, "caller", None)
    await audit.record(AuditEntry(
        at=request.app.state.runtime.clock.now(), service=service_name, method=request.method,
        route=getattr(route, "path", request.url.path)[:300], dossier_code=request.path_params.get("code"),
        status=status, outcome="denied" if denied and status != 429 else outcome_of(status), reason=clean_reason(getattr(request.state, "refusal", None)),
        client_id=caller.client_id if caller else None, username=caller.username if caller else None,
        agency=caller.agency if caller else None, request_id=request_id, trace_id=current_trace_id(),
    ))


def install_edges(app: FastAPI, service_name: str, max_body_bytes: int) -> None:
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
        return JSONResponse({"status": 503, "title": "database unavailable; retry with the same Idempotency-Key"},
                            status_code=503, media_type="application/problem+json", headers={"Retry-After": "1"})

    @app.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> JSONResponse:
        log.info("http.access_denied %s %s %s", exc.status, request.method, request.url.path)
        request.state.refusal = exc.audited_reason
        request.state.denied = True
        response = problem(exc.status, exc.reason)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="lgsp"'
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    @app.exception_handler(ProviderUnavailable)
    async def provider_unavailable(request: Request, exc: ProviderUnavailable) -> JSONResponse:
        log.warning("http.identity_provider_unavailable %s", exc)
        return JSONResponse({"status": 503, "title": f"{exc}; retry shortly"}, status_code=503,
                            media_type="application/problem+json", headers={"Retry-After": "2"})

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(UnicodeEncodeError)
    async def unstorable_text(request: Request, exc: Exception) -> JSONResponse:
        # e.g. a NUL or a lone surrogate in a path or query parameter
        return problem(400, "the request contains characters that are not valid text (NUL or broken Unicode)")

    @app.get("/health", tags=["operations"])
    async def health() -> dict:
        return {"service": service_name, "status": "ok"}

    app.add_middleware(ServerSpan, service_name=service_name)
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)


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
            f"{method} {route}", kind=SpanKind.SERVER, context=context_from_headers(headers),
            attributes={"http.request.method": method, "url.path": route},
        ) as span:
            ids = [(b"x-trace-id", (current_trace_id() or "").encode()), (b"x-request-id", request_id.encode("latin-1"))]
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
