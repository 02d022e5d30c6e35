"""The national public-service portal's status sync, as a strict receiver.

``POST /auth/token`` {client_id, client_secret} gives a session token; ``POST
/api/DongBoHoSoMC`` (Bearer token) takes one status update of one dossier in the portal's
vocabulary. It refuses (400) missing fields, unknown status or channel codes and dates not in
``yyyyMMddHHmmss``, and (409) an update whose ``SoThuTu`` is not the next for that ``MaHoSo``;
the same update again is accepted once. ``POST /control`` {"down": bool}; ``GET
/control/updates`` lists what it holds per dossier.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ops.simulators.common import make_app, run

app = make_app("portal")
CLIENTS = {"lgsp-ninh-binh": "local-portal-secret"}
TOKENS: set[str] = set()
STATE = {"down": False}
UPDATES: dict[str, list[dict]] = {}
DATE = re.compile(r"^\d{14}$")
REQUIRED = (
    "SoThuTu",
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "TrangThaiHoSo",
    "HinhThuc",
    "NgayTiepNhan",
    "NgayHenTra",
    "DonViXuLy",
)


class Login(BaseModel):
    client_id: str
    client_secret: str


@app.post("/auth/token")
async def token(login: Login):
    if STATE["down"]:
        return JSONResponse({"error": "unavailable"}, status_code=503)
    if CLIENTS.get(login.client_id) != login.client_secret:
        return JSONResponse({"error": "invalid client"}, status_code=401)
    t = secrets.token_hex(16)
    TOKENS.add(t)
    return {"access_token": t, "token_type": "Bearer", "expires_in": 3600}


@app.post("/api/DongBoHoSoMC")
async def sync(request: Request, authorization: str = Header("")):
    if STATE["down"]:
        return JSONResponse({"error": "unavailable"}, status_code=503)
    if authorization.removeprefix("Bearer ") not in TOKENS:
        return JSONResponse({"error": "invalid or expired token"}, status_code=401)
    body = await request.json()
    missing = [f for f in REQUIRED if body.get(f) in (None, "")]
    if missing:
        return JSONResponse({"error": f"missing fields: {', '.join(missing)}"}, status_code=400)
    if body["TrangThaiHoSo"] not in range(1, 11) or body["HinhThuc"] not in (1, 2, 3):
        return JSONResponse({"error": "TrangThaiHoSo must be 1-10 and HinhThuc 1-3"}, status_code=400)
    for f in ("NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra"):
        if body.get(f) and not DATE.match(str(body[f])):
            return JSONResponse({"error": f"{f} must be yyyyMMddHHmmss"}, status_code=400)
    held = UPDATES.setdefault(body["MaHoSo"], [])
    if held and body["SoThuTu"] == held[-1]["SoThuTu"] and body == held[-1]:
        return {"result": "duplicate accepted"}
    if body["SoThuTu"] != len(held) + 1:
        return JSONResponse(
            {"error": f"out of order: expected SoThuTu {len(held) + 1}, got {body['SoThuTu']}"}, status_code=409
        )
    held.append(body)
    return {"result": "ok"}


class Control(BaseModel):
    down: bool = False


@app.post("/control")
async def control(c: Control) -> dict:
    STATE.update(c.model_dump())
    return STATE


PERSONAL_FIELDS = ("SoDienThoai", "SoGiayToChuHoSo", "Email")


def _masked(update: dict) -> dict:
    """An update as the control route shows it: the portal got the citizen's phone in clear,
    but whoever reads the simulator's state (tests, chaos, an operator) sees only its shape."""
    return {
        k: (f"{str(v)[:2]}{'*' * max(0, len(str(v)) - 4)}{str(v)[-2:]}" if k in PERSONAL_FIELDS and v else v)
        for k, v in update.items()
    }


@app.get("/control/updates")
async def updates() -> dict:
    return {code: [_masked(u) for u in held] for code, held in UPDATES.items()}


if __name__ == "__main__":
    run(app, 8093)
