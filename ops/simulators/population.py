"""The national population database's citizen check, as the national data-sharing platform
offers it to a province: a strict stand-in.

- ``POST /oauth2/token``: OAuth2 client credentials (HTTP Basic client authentication,
  ``grant_type=client_credentials``) give a bearer token valid 300 s.
- ``POST /v1/citizens/verify`` {id_number, full_name, date_of_birth?}: the bearer token, and
  the request signed with the client's Ed25519 key: ``X-Client-Id``, ``X-Timestamp`` (Unix
  seconds, within 300 s), ``X-Nonce`` (never twice) and ``X-Signature``, base64 of the signature
  over ``POST\\n/v1/citizens/verify\\n<timestamp>\\n<nonce>\\n<hex SHA-256 of the body>``.
  It answers whether the citizen is found and, field by field, whether what was given
  matches, with the fields the database holds (date of birth, permanent address).
- ``POST /control`` {"down": bool, "delay_s": float}; ``POST /control/citizens`` [{id_number,
  full_name, date_of_birth, permanent_address}] adds citizens; ``GET /control/stats``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import unicodedata
from datetime import date

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ops.simulators.common import make_app, run
from shared.settings import LOCAL_SECRETS

app = make_app("population")
CLIENT_ID = "lgsp-ninh-binh"
CLIENTS = {CLIENT_ID: LOCAL_SECRETS["population_client_secret"]}
PUBLIC_KEYS: dict[str, Ed25519PublicKey] = {
    CLIENT_ID: Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(LOCAL_SECRETS["population_signing_key"])
    ).public_key()
}
TOKEN_TTL_S = 300
TOKENS: dict[str, float] = {}
NONCES: dict[str, float] = {}
STATE = {"down": False, "delay_s": 0.0}
STATS = {"verified": 0, "refused": 0, "unavailable": 0}


class Citizen(BaseModel):
    id_number: str = Field(pattern=r"^\d{12}$")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    permanent_address: str = Field(min_length=1, max_length=500)


# The citizens the platform's own tools submit for (ops/clients.APPLICANT, the demo's people);
# tests and the demo add others through /control/citizens.
CITIZENS: dict[str, Citizen] = {
    c.id_number: c
    for c in (
        Citizen(
            id_number="001203004567",
            full_name="Nguyễn Thị Hồng Nhung",
            date_of_birth=date(1990, 5, 17),
            permanent_address="Số 5, phố Lê Lợi, phường Đông Thành, thành phố Ninh Bình, tỉnh Ninh Bình",
        ),
    )
}


class Verify(BaseModel):
    id_number: str = Field(pattern=r"^\d{12}$")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date | None = None


def _same_name(a: str, b: str) -> bool:
    """Names compare letter for letter (diacritics count), ignoring case, spacing and Unicode form."""

    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFC", s).casefold().split())

    return norm(a) == norm(b)


def _refuse(status: int, reason: str) -> JSONResponse:
    STATS["refused"] += 1
    return JSONResponse({"error": reason}, status_code=status)


@app.post("/oauth2/token")
async def token(request: Request, authorization: str = Header("")):
    if STATE["down"]:
        STATS["unavailable"] += 1
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
    form = await request.form()
    try:
        client_id, _, secret = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        return _refuse(401, "invalid_client")
    if form.get("grant_type") != "client_credentials":
        return _refuse(400, "unsupported_grant_type")
    if not secrets.compare_digest(CLIENTS.get(client_id, ""), secret):
        return _refuse(401, "invalid_client")
    value = secrets.token_urlsafe(24)
    TOKENS[value] = time.time() + TOKEN_TTL_S
    return {"access_token": value, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}


@app.post("/v1/citizens/verify")
async def verify(
    request: Request,
    authorization: str = Header(""),
    x_client_id: str = Header(""),
    x_timestamp: str = Header(""),
    x_nonce: str = Header(""),
    x_signature: str = Header(""),
):
    if STATE["delay_s"]:
        await asyncio.sleep(STATE["delay_s"])
    if STATE["down"]:
        STATS["unavailable"] += 1
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
    now = time.time()
    if TOKENS.get(authorization.removeprefix("Bearer "), 0) < now:
        return _refuse(401, "invalid_token")
    body = await request.body()
    key = PUBLIC_KEYS.get(x_client_id)
    if key is None or not x_timestamp.isdigit() or abs(now - int(x_timestamp)) > 300 or not 8 <= len(x_nonce) <= 64:
        return _refuse(401, "unsigned or stale request")
    signed = f"POST\n/v1/citizens/verify\n{x_timestamp}\n{x_nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
    try:
        key.verify(base64.b64decode(x_signature), signed)
    except (InvalidSignature, ValueError):
        return _refuse(401, "bad signature")
    if x_nonce in NONCES:
        return _refuse(401, "replayed request")
    NONCES[x_nonce] = now
    for old in [n for n, at in NONCES.items() if at < now - 600]:
        del NONCES[old]
    asked = Verify.model_validate_json(body)
    STATS["verified"] += 1
    citizen = CITIZENS.get(asked.id_number)
    if citizen is None:
        return {"found": False}
    return {
        "found": True,
        "match": {
            "full_name": _same_name(asked.full_name, citizen.full_name),
            "date_of_birth": None if asked.date_of_birth is None else asked.date_of_birth == citizen.date_of_birth,
        },
        "citizen": {"date_of_birth": citizen.date_of_birth.isoformat(), "permanent_address": citizen.permanent_address},
    }


class Control(BaseModel):
    down: bool | None = None
    delay_s: float | None = Field(None, ge=0, le=60)


@app.post("/control")
async def control(c: Control):
    STATE.update({k: v for k, v in c.model_dump().items() if v is not None})
    return STATE


@app.post("/control/citizens")
async def add_citizens(citizens: list[Citizen]):
    CITIZENS.update({c.id_number: c for c in citizens})
    return {"citizens": len(CITIZENS)}


@app.get("/control/stats")
async def stats():
    return {**STATS, **STATE, "citizens": len(CITIZENS)}


if __name__ == "__main__":
    run(app, 8095)
