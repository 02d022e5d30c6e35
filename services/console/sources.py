"""The console's only sources: the other services' HTTP APIs, called with the signed-in
person's token (each service applies its own access policy), and the stack's span files for
trace waterfalls. The console never opens another service's database."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from shared.services import NAMES
from shared.traceview import load_trace

SERVICES = NAMES


@dataclass(frozen=True)
class Answer:
    """One service's answer, or why there is none, in words for the page."""

    status: int  # 0: the service did not answer
    body: Any = None
    ms: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> str | None:
        if self.ok:
            return None
        if self.status == 0:
            return "Dịch vụ không trả lời."
        if self.status in (401, 403):
            return "Tài khoản của bạn không có quyền xem phần này."
        if self.status == 404:
            return "Không tìm thấy."
        title = self.body.get("title") if isinstance(self.body, dict) else None
        return f"Dịch vụ trả lời lỗi {self.status}" + (f": {title}" if title else ".")


PASSED_HEADERS = ("content-type", "content-length", "content-disposition", "etag", "x-content-sha256", "cache-control")


class Platform:
    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str], trace_dir: Path) -> None:
        self.http = http
        self.urls = urls
        self.trace_dir = trace_dir

    async def call(self, method: str, service: str, path: str, token: str | None, json: Any = None, **params) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            r = await self.http.request(
                method, f"{self.urls[service]}{path}", headers=headers, params=params or None, json=json
            )
        except httpx.HTTPError:
            return Answer(0, ms=(time.perf_counter() - started) * 1000)
        try:
            body = r.json()
        except ValueError:
            body = None
        return Answer(r.status_code, body, (time.perf_counter() - started) * 1000)

    async def stream(self, service: str, path: str, token: str | None) -> Response:
        """A file from a service, passed through chunk by chunk (never held whole here)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = self.http.build_request("GET", f"{self.urls[service]}{path}", headers=headers)
        try:
            upstream = await self.http.send(request, stream=True)
        except httpx.HTTPError:
            return Response("Dịch vụ không trả lời.", status_code=502, media_type="text/plain; charset=utf-8")
        if upstream.status_code != 200:
            await upstream.aread()
            await upstream.aclose()
            answer = Answer(upstream.status_code, None)
            return Response(
                answer.problem or "", status_code=upstream.status_code, media_type="text/plain; charset=utf-8"
            )
        kept = {k: v for k, v in upstream.headers.items() if k in PASSED_HEADERS}
        return StreamingResponse(upstream.aiter_bytes(), headers=kept, background=BackgroundTask(upstream.aclose))

    async def get(self, service: str, path: str, token: str | None, **params) -> Answer:
        return await self.call("GET", service, path, token, **params)

    async def each(self, path: str, token: str | None) -> dict[str, Answer]:
        """The same GET on every service, at once."""
        answers = await asyncio.gather(*(self.get(s, path, token) for s in SERVICES))
        return dict(zip(SERVICES, answers))

    async def spans(self, trace_id: str) -> list[dict]:
        if not trace_id or not self.trace_dir.is_dir():
            return []
        return await asyncio.to_thread(load_trace, self.trace_dir, trace_id)
