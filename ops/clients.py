"""Small clients of the platform's HTTP APIs: what a portal sends to intake and what an
agency's system does through routing. Used by the demo, the bench, chaos and the tests, each
request with a real token from the identity provider (ops/identity.py)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from typing import TypeVar

import httpx

from ops.identity import IDENTITIES, TokenSource
from shared.reference.calendar import LOCAL_TZ
from shared.reference.catalogue import catalogue_for

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
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


async def pay_fee_if_asked(http: httpx.AsyncClient, intake: str, payment: str, dossier: dict) -> dict:
    """An online dossier of a procedure with a fee waits for its payment: the citizen pays on
    the payment platform (its simulator) once intake has the order. Returns the dossier as
    intake then shows it (with its ``pay_url`` and fee), or as given when no fee was asked."""
    if dossier.get("status") != "awaiting_payment":
        return dossier

    async def ordered():
        d = (await http.get(f"{intake}/v1/dossiers/{dossier['code']}")).json()
        return d if d["pay_url"] else None

    d = await eventually(ordered, timeout=60, interval=0.25, what="the payment order")
    ok(await http.post(f"{payment}/control/pay/{d['pay_url'].rsplit('/', 1)[1]}", auth=None), 200)
    return d


def platform_http(identity: TokenSource | None = None, **options) -> httpx.AsyncClient:
    """An HTTP client of the platform that acts as ``identity``: by default the platform's own
    driver (a portal that also reads like an operator and a manager). Per request,
    ``auth=IDENTITIES.official(agency)`` acts as an agency's official instead."""
    options.setdefault("timeout", 15)
    return httpx.AsyncClient(auth=identity or IDENTITIES.driver, **options)


@cache
def component_file(code: str, name: str) -> bytes:
    """The sample scan of a component (a one-page PDF), the same bytes for the whole process."""
    from ops.signing import document_pdf

    return document_pdf(code, name, [f"Ban chup thanh phan ho so {code}"])


def documents_for(procedure_code: str, variant: str = "three_level", on_paper: bool = False) -> list[dict]:
    """One document per required component of the procedure, as a portal would send them:
    each names its file by the hash the upload returned (``upload_component_files``).
    ``on_paper``: as a counter takes them when it does not scan (no file)."""
    procedure = catalogue_for(variant).procedures[procedure_code]
    if on_paper:
        return [{"component": c.code, "name": c.name} for c in procedure.required_components()]
    return [
        {
            "component": c.code,
            "name": f"{c.name}.pdf",
            "media_type": "application/pdf",
            "size": len(component_file(c.code, c.name)),
            "sha256": hashlib.sha256(component_file(c.code, c.name)).hexdigest(),
        }
        for c in procedure.required_components()
    ]


async def upload_component_files(
    http: httpx.AsyncClient, intake_url: str, variant: str = "three_level", auth: httpx.Auth | None = None
) -> int:
    """What a portal does before submitting: upload the component files ``documents_for``
    names (every procedure's of the catalogue), as ``auth`` (default: the client's own)."""
    seen = {(c.code, c.name) for p in catalogue_for(variant).procedures.values() for c in p.required_components()}
    for code, name in sorted(seen):
        resp = await http.post(
            f"{intake_url}/v1/files",
            content=component_file(code, name),
            headers={"content-type": "application/pdf"},
            **({"auth": auth} if auth is not None else {}),
        )
        ok(resp, 201)
    return len(seen)


def submission(
    procedure_code: str = "1.001193",
    agency_code: str = COMMUNE,
    channel: str = "online",
    applicant: dict | None = None,
    variant: str = "three_level",
    **extra,
) -> dict:
    return {
        "channel": channel,
        "procedure_code": procedure_code,
        "agency_code": agency_code,
        "applicant": applicant or APPLICANT,
        # a portal uploads every component; a counter or the post brings paper (scanning is optional)
        "documents": documents_for(procedure_code, variant, on_paper=channel != "online"),
        **extra,
    }


# A paper result as the deciding agency describes it, not scanned (no file).
RESULT = {"name": "Giấy xác nhận kết quả.pdf"}


def supplement_documents() -> list[dict]:
    """What a portal sends when a supplement is asked for: one of the files it uploaded
    (``upload_component_files``)."""
    return documents_for("1.001193")[:1]


def result_scan(agency: str) -> bytes:
    return component_file("KQ", f"Kết quả giải quyết của {agency}")


class Decisions:
    """What a deciding agency's document software does when a dossier's result is a decision:
    lay it out, sign it (official, then agency, from the test PKI in ``pki_dir``), upload it
    and send it through the documents service with the dossier's code, to the agency that
    returns the result."""

    def __init__(self, documents_url: str, pki_dir, now: datetime) -> None:
        self.url, self.pki_dir = documents_url, pki_dir
        self.issued_on = now.astimezone(LOCAL_TZ).date().isoformat()

    async def issue(self, dossier: dict, agency: str, *, number: str | None = None, tamper: bool = False) -> str:
        """Sends ``agency``'s decision on ``dossier`` (routing's view of it); returns its id.
        ``tamper`` changes one byte after signing, as a broken transfer would."""
        from ops.pki import TestPki
        from ops.signing import document_pdf, sign_twice

        pki = TestPki(self.pki_dir)
        number = number or f"{dossier['code']}/QĐ"  # one decision per dossier: its code keeps the number unique
        pdf = await sign_twice(
            document_pdf(
                number, f"Quyết định giải quyết hồ sơ {dossier['code']}", ["Quyet dinh giai quyet thu tuc hanh chinh"]
            ),
            pki.credential(f"official-{agency}"),
            pki.credential(f"agency-{agency}"),
        )
        if tamper:
            pdf = pdf.replace(b"Quyet dinh giai", b"Quyet dinh GIAI")
        async with httpx.AsyncClient(timeout=30, auth=IDENTITIES.official(agency)) as http:
            stored = ok(
                await http.post(
                    f"{self.url}/v1/documents/files", content=pdf, headers={"content-type": "application/pdf"}
                ),
                201,
            ).json()
            sent = await http.post(
                f"{self.url}/v1/documents",
                json={
                    "agency_code": agency,
                    "number": number,
                    "issued_on": self.issued_on,
                    "doc_type": "Quyết định",
                    "summary": f"Quyết định giải quyết hồ sơ {dossier['code']}",
                    "urgency": "urgent",
                    "recipients": [dossier["steps"][-1]["agency_code"]],
                    "file_sha256": stored["sha256"],
                    "dossier_code": dossier["code"],
                },
            )
            return ok(sent, 201).json()["id"]


class Agencies:
    """What agencies' systems do through routing's HTTP API (and, for a decision, through the
    documents service: ``decisions``)."""

    def __init__(self, http, routing_url: str, decisions: Decisions | None = None) -> None:
        self.http = http
        self.url = routing_url
        self.decisions = decisions
        self._scans: dict[str, dict] = {}

    async def scanned_result(self, agency: str) -> dict:
        """The deciding agency scans its paper result and uploads the scan (once per agency
        here: the same bytes every time); the result then names the file."""
        if agency not in self._scans:
            stored = ok(
                await self.http.post(
                    f"{self.url}/v1/files",
                    content=result_scan(agency),
                    headers={"content-type": "application/pdf"},
                    auth=IDENTITIES.official(agency),
                ),
                201,
            ).json()
            self._scans[agency] = {"name": f"Kết quả {agency}.pdf", "sha256": stored["sha256"]}
        return self._scans[agency]

    async def act(self, code: str, action: str, agency: str | None = None, *, as_agency: str | None = None, **body):
        """``action`` as the official of ``agency`` (named in the body too), or of ``as_agency``
        for actions whose body names none (a withdrawal)."""
        if agency is not None:
            body = {"agency_code": agency, **body}
        official = agency or as_agency
        return await self.http.post(
            f"{self.url}/v1/dossiers/{code}/{action}",
            json=body,
            auth=IDENTITIES.official(official) if official else httpx.USE_CLIENT_DEFAULT,
        )

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
        elif step["status"] == "in_progress" and d["result_kind"] == "decision":
            action, body = "resolve", {"outcome": "approved", "decision_document_id": await self.decide(d, agency)}
        elif step["status"] == "in_progress":
            action, body = "resolve", {"outcome": "approved", "result_document": await self.scanned_result(agency)}
        else:
            raise RuntimeError(f"{code}: step '{step['name']}' is {step['status']}; no agency action fits")
        ok(await self.act(code, action, agency, **body))
        return action

    async def decide(self, d: dict, agency: str) -> str:
        """Issue the dossier's decision and wait until routing has seen it arrive, checked."""
        if self.decisions is None:
            raise RuntimeError(
                f"{d['code']}: its result is a decision, and these Agencies have no Decisions to issue it"
            )
        document_id = await self.decisions.issue(d, agency)

        async def checked():
            docs = {x["document_id"]: x for x in (await self.dossier(d["code"]))["documents"]}
            doc = docs.get(document_id)
            if doc is not None and doc["state"] == "refused":
                raise RuntimeError(f"{d['code']}: the decision was refused on arrival: {doc['reason']}")
            return doc is not None and doc["state"] == "valid"

        await eventually(checked, timeout=60, what=f"the decision for {d['code']} to arrive, checked")
        return document_id

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


def ok(resp, status: int = 200):
    if resp.status_code != status:
        raise RuntimeError(f"{resp.request.method} {resp.request.url} answered {resp.status_code}: {resp.text}")
    return resp
