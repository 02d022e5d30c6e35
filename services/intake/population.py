"""The applicant's identity against the national population database, through the national
data-sharing platform's citizen check (ops/simulators/population.py stands in for it).

- The platform's OAuth2 client (client credentials) gets a token, kept until shortly before it
  expires; every request is also signed with our Ed25519 key (timestamp, nonce, body hash).
- A check waits at most ``population_timeout_s``: the counter is never held up by a slow
  database. A database that does not answer gives ``unavailable``, and the dossier is received
  "to be confirmed" (``identity_status = 'to_confirm'``); the recheck worker asks again later, and
  when the answer then is a mismatch, an event tells the officials (the dossier's timeline).
- A circuit breaker (shared/breaker.py) stops calling a database that keeps failing; the
  operations page shows it.
- What the database answers is personal data: it is sealed with the dossier, never logged, and
  dropped when the dossier is finished.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import asyncpg
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.breaker import CircuitBreaker
from shared.dossier_text import identity_fields_vi
from shared.events import DossierIdentityChecked, Reason
from shared.outbox import Outbox
from shared.personal_data import PersonalDataKeys

log = logging.getLogger("intake.population")
VERIFY_PATH = "/v1/citizens/verify"
SEALED_AS = "identity"  # the field name the database's answer is sealed under
FINISHED = ("returned", "withdrawn", "stopped")


@dataclass(frozen=True)
class Verdict:
    """What the database said: ``confirmed`` (found, everything given matches), ``mismatch``
    (found, ``mismatched`` fields differ), ``not_found``, or ``unavailable`` (no answer in time,
    or the circuit is open)."""

    status: str
    mismatched: tuple[str, ...] = ()
    citizen: dict = field(default_factory=dict)  # date_of_birth, permanent_address: personal data


def verdict_of(answer: dict) -> Verdict:
    if not answer.get("found"):
        return Verdict("not_found")
    mismatched = tuple(sorted(f for f, same in (answer.get("match") or {}).items() if same is False))
    return Verdict("mismatch" if mismatched else "confirmed", mismatched, dict(answer.get("citizen") or {}))


def refusal_reasons(verdict: Verdict) -> list[Reason]:
    """A check's outcome as refusal reasons at receipt (none when confirmed or unavailable)."""
    if verdict.status == "not_found":
        return [
            Reason(
                code="identity_not_found",
                message="the personal ID number is not in the national population database",
            )
        ]
    if verdict.status == "mismatch":
        named = identity_fields_vi(verdict.mismatched)
        return [
            Reason(
                code="identity_mismatch",
                message=f"does not match the national population database: {named}",
            )
        ]
    return []


def prefilled(verdict: Verdict, date_of_birth: date | None) -> dict:
    """The fields the database gives that the applicant did not: the date of birth when not
    given, and the permanent address (the applicant gives a contact address, not this one)."""
    fields = {}
    if date_of_birth is None and verdict.citizen.get("date_of_birth"):
        fields["date_of_birth"] = verdict.citizen["date_of_birth"]
    if verdict.citizen.get("permanent_address"):
        fields["permanent_address"] = verdict.citizen["permanent_address"]
    return fields


class PopulationClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        client_id: str,
        client_secret: str,
        signing_key: str,
        timeout_s: float,
        breaker: CircuitBreaker | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http, self.url, self.client_id, self.client_secret = http, url.rstrip("/"), client_id, client_secret
        self.key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_key))
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        # The party's protocol lives in real time (token lifetimes, signed timestamps), even when
        # the platform's clock is moved.
        self.wall, self.monotonic = wall, monotonic
        self._token: tuple[str, float] | None = None

    def state(self) -> dict:
        return {"url": self.url, "breaker": self.breaker.describe(self.monotonic())}

    async def _bearer(self) -> str:
        if self._token is None or self._token[1] <= self.wall():
            r = await self.http.post(
                f"{self.url}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
                timeout=self.timeout_s,
            )
            r.raise_for_status()
            body = r.json()
            self._token = (body["access_token"], self.wall() + float(body.get("expires_in", 60)) - 30)
        return self._token[0]

    def _signed(self, body: bytes) -> dict[str, str]:
        ts, nonce = str(int(self.wall())), secrets.token_hex(16)
        signed = f"POST\n{VERIFY_PATH}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
        return {
            "X-Client-Id": self.client_id,
            "X-Timestamp": ts,
            "X-Nonce": nonce,
            "X-Signature": base64.b64encode(self.key.sign(signed)).decode(),
            "Content-Type": "application/json",
        }

    async def verify(self, id_number: str, full_name: str, date_of_birth: date | None) -> Verdict:
        if not self.breaker.allow(self.monotonic()):
            return Verdict("unavailable")
        body = json.dumps(
            {
                "id_number": id_number,
                "full_name": full_name,
                "date_of_birth": date_of_birth.isoformat() if date_of_birth else None,
            },
            ensure_ascii=False,
        ).encode()
        try:
            for attempt in (1, 2):  # once more with a new token when the old one was refused
                headers = {**self._signed(body), "Authorization": f"Bearer {await self._bearer()}"}
                r = await self.http.post(
                    f"{self.url}{VERIFY_PATH}", content=body, headers=headers, timeout=self.timeout_s
                )
                if r.status_code == 401 and attempt == 1:
                    self._token = None
                    continue
                r.raise_for_status()
                self.breaker.succeeded()
                return verdict_of(r.json())
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            # no personal data in the log: the request's fields are not named
            log.warning("population database did not answer: %s", type(exc).__name__)
        self.breaker.failed(self.monotonic())
        return Verdict("unavailable")


def at_receipt(
    verdict: Verdict | None, checks: bool, date_of_birth: date | None, pd: PersonalDataKeys
) -> tuple[str, str | None, list[str]]:
    """The dossier's identity status as received, the database's fields sealed, and which fields
    came from it. ``checks``: the procedure is connected to the database and one is configured.
    Such a dossier whose check got no answer (or was not asked: a pickup the post brings) is
    received "to be confirmed"."""
    if not checks:
        return "not_checked", None, []
    if verdict is None or verdict.status == "unavailable":
        return "to_confirm", None, []
    sealed, fields = _sealed_answer(verdict, date_of_birth.isoformat() if date_of_birth else None, pd)
    return "confirmed", sealed, fields


async def recheck_due(
    pool: asyncpg.Pool,
    client: PopulationClient,
    outbox: Outbox,
    pd: PersonalDataKeys,
    now: datetime,
    every: timedelta = timedelta(minutes=1),
    batch: int = 50,
) -> int:
    """Ask again for dossiers received "to be confirmed"; returns how many got an answer. The
    HTTP call is made outside any transaction; the answer is applied only if the dossier still
    waits for it."""
    rows = await pool.fetch(
        "SELECT id, code, agency_code, applicant, identity_birth_date FROM dossiers "
        "WHERE identity_status = 'to_confirm' AND (identity_checked_at IS NULL OR identity_checked_at <= $1) "
        "ORDER BY received_at LIMIT $2",
        now - every,
        batch,
    )
    answered = 0
    for row in rows:
        applicant = json.loads(row["applicant"])
        birth = pd.open(row["identity_birth_date"], "date_of_birth")
        verdict = await client.verify(
            pd.open(applicant["id_number"], "id_number") or "",
            applicant["full_name"],
            date.fromisoformat(birth) if birth else None,
        )
        async with pool.acquire() as conn, conn.transaction():
            if verdict.status == "unavailable":
                await conn.execute(
                    "UPDATE dossiers SET identity_checked_at = $2, identity_attempts = identity_attempts + 1 "
                    "WHERE id = $1 AND identity_status = 'to_confirm'",
                    row["id"],
                    now,
                )
                if client.breaker.state(client.monotonic()) != "closed":
                    break  # the database is down: the rest wait for the next round
                continue
            outcome = "confirmed" if verdict.status == "confirmed" else "failed"
            changed = await conn.fetchval(
                "UPDATE dossiers SET identity_status = $2, identity_checked_at = $3, "
                "identity_attempts = identity_attempts + 1, identity_from_db = $4, identity_prefilled = $5 "
                "WHERE id = $1 AND identity_status = 'to_confirm' RETURNING id",
                row["id"],
                outcome,
                now,
                *_sealed_answer(verdict, birth, pd),
            )
            if changed is None:
                continue
            answered += 1
            await outbox.add(
                conn,
                DossierIdentityChecked(
                    dossier_id=row["id"],
                    dossier_code=row["code"],
                    at=now,
                    agency_code=row["agency_code"],
                    outcome=outcome,
                    mismatched=verdict.mismatched or (("id_number",) if verdict.status == "not_found" else ()),
                ),
            )
    return answered


def _sealed_answer(verdict: Verdict, birth: str | None, pd: PersonalDataKeys) -> tuple[str | None, list[str]]:
    """The database's fields kept with the dossier (sealed), and which fields came from it."""
    fields = prefilled(verdict, date.fromisoformat(birth) if birth else None)
    sealed = pd.seal(json.dumps(fields, ensure_ascii=False), SEALED_AS) if fields else None
    return sealed, sorted(fields)


async def forget_finished(pool: asyncpg.Pool) -> int:
    """Drop the database's answers of finished dossiers: kept only as long as the dossier needs them."""
    result = await pool.execute(
        "UPDATE dossiers SET identity_from_db = NULL WHERE identity_from_db IS NOT NULL AND status = ANY($1::text[])",
        list(FINISHED),
    )
    return int(result.split()[-1])
