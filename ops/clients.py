"""Small clients of the platform's HTTP APIs: what a portal sends to intake and what an
agency's system does through routing. Used by the demo, the bench, chaos and the tests, each
request with a real token from the identity provider (ops/identity.py)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from ops.identity import IDENTITIES, TokenSource
from shared.reference.catalogue import catalogue_for

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.1,
                     what: str = "condition") -> T:
    """Poll ``probe`` until it returns a truthy value; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


APPLICANT = {
    "full_name": "Nguyễn Thị Hồng Nhung",
    "id_number": "001203004567",
    "phone": "0912345678",
    "email": "hong.nhung@example.vn",
    "address": "Số 5, phố Lê Lợi, phường Đông Thành, thành phố Ninh Bình, tỉnh Ninh Bình",
}
COMMUNE = "000.21.12.H40"  # Ủy ban nhân dân xã Ninh Hải (three-level sample)


def platform_http(identity: TokenSource | None = None, **options) -> httpx.AsyncClient:
    """An HTTP client of the platform that acts as ``identity``: by default the platform's own
    driver (a portal that also reads like an operator and a manager). Per request,
    ``auth=IDENTITIES.official(agency)`` acts as an agency's official instead."""
    options.setdefault("timeout", 15)
    return httpx.AsyncClient(auth=identity or IDENTITIES.driver, **options)


def documents_for(procedure_code: str, variant: str = "three_level") -> list[dict]:
    """One document per required component of the procedure, as a portal would send them."""
    procedure = catalogue_for(variant).procedures[procedure_code]
    return [{"component": c.code, "name": f"{c.name}.pdf", "media_type": "application/pdf", "size": 102_400,
             "sha256": hashlib.sha256(c.name.encode("utf-8")).hexdigest()} for c in procedure.required_components()]


def submission(procedure_code: str = "1.001193", agency_code: str = COMMUNE, channel: str = "online",
               applicant: dict | None = None, variant: str = "three_level", **extra) -> dict:
    return {"channel": channel, "procedure_code": procedure_code, "agency_code": agency_code,
            "applicant": applicant or APPLICANT, "documents": documents_for(procedure_code, variant), **extra}


OFFICIAL = {"name": "Phạm Minh Tuấn", "title": "Công chức Tư pháp - Hộ tịch"}
RESULT = {"name": "Quyết định.pdf", "media_type": "application/pdf", "size": 52_000, "sha256": "ab" * 32}


class Agencies:
    """What agencies' systems do through routing's HTTP API."""

    def __init__(self, http, routing_url: str) -> None:
        self.http = http
        self.url = routing_url

    async def act(self, code: str, action: str, agency: str | None = None, *, as_agency: str | None = None, **body):
        """``action`` as the official of ``agency`` (named in the body too), or of ``as_agency``
        for actions whose body names none (a withdrawal)."""
        if agency is not None:
            body = {"agency_code": agency, "actor": OFFICIAL, **body}
        official = agency or as_agency
        return await self.http.post(f"{self.url}/v1/dossiers/{code}/{action}", json=body,
                                    auth=IDENTITIES.official(official) if official else httpx.USE_CLIENT_DEFAULT)

    async def dossier(self, code: str) -> dict | None:
        r = await self.http.get(f"{self.url}/v1/dossiers/{code}")
        return r.json() if r.status_code == 200 else None

    async def holder(self, code: str) -> str | None:
        d = await self.dossier(code)
        return d["steps"][d["current_step"]]["agency_code"] if d else None

    async def timeline(self, code: str) -> list[dict]:
        r = await self.http.get(f"{self.url}/v1/dossiers/{code}/timeline")
        return r.json() if r.status_code == 200 else []

    async def next_action(self, code: str) -> str | None:
        """Read the dossier, then take the one action its current step needs: accept an
        assigned step, forward a handled one, approve a decision. Returns the action taken, or
        None when the dossier needs nothing from an agency now (only the return of its result
        is left, it waits for a supplement, or it is finished)."""
        d = await self.dossier(code)
        if d is None or d["status"] != "processing":
            return None
        step = d["steps"][d["current_step"]]
        if step["kind"] == "return":
            return None
        agency = step["agency_code"]
        if step["status"] == "assigned":
            action, body = "accept", {}
        elif step["status"] == "in_progress" and step["kind"] == "handle":
            action, body = "forward", {}
        elif step["status"] == "in_progress":
            action, body = "resolve", {"outcome": "approved", "result_document": RESULT}
        else:
            raise RuntimeError(f"{code}: step '{step['name']}' is {step['status']}; no agency action fits")
        ok(await self.act(code, action, agency, **body))
        return action

    async def step_through_one(self, code: str) -> bool:
        """Finish the current step, whatever state it is in (accept it if not yet accepted,
        then forward or decide it). Returns False when no step is left for an agency."""
        while (action := await self.next_action(code)) is not None:
            if action != "accept":
                return True
        return False

    async def step_through(self, code: str) -> None:
        """Take the dossier through every step up to the return of its result."""
        while await self.next_action(code) is not None:
            pass


def ok(resp):
    if resp.status_code != 200:
        raise RuntimeError(f"{resp.request.method} {resp.request.url} answered {resp.status_code}: {resp.text}")
    return resp
