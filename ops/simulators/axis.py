"""The national document-exchange axis (trục liên thông văn bản quốc gia), as a strict peer:
it carries documents to agencies of other provinces and reports their statuses back.

- ``POST /api/edocs`` (header ``X-Axis-Key``): one document for one agency elsewhere:
  {id, from, to, number, issued_on, summary, urgency, sha256, pdf_base64}. 400 when a field is
  missing or the file does not match its SHA-256; the same ``id`` again is accepted once more
  without a second delivery. The receiving province then answers: arrived (01), accepted (03).
- ``GET /api/edocs/{id}/statuses``: the statuses so far, each {seq, status, code, at}.
- ``POST /api/edocs/{id}/recall`` {reason}: the sender takes the copy back (recalled, or
  replaced by a newer version); the receiving province is told once, however often it is
  asked. 404 for an id it never took.
- ``POST /control`` {fail_next, delay_s, duplicate, reorder}: refuse the next N sends with 503,
  answer late, list each status twice, list them newest first.
- ``GET /control/edocs``: what it delivered, and how many times each id was sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime, timezone

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ops.simulators.common import make_app, run

app = make_app("axis")
KEYS = {"local-axis-secret"}
STATE = {"fail_next": 0, "delay_s": 0.0, "duplicate": False, "reorder": False}
EDOCS: dict[str, dict] = {}
SENDS: dict[str, int] = {}
RECALLS: dict[str, int] = {}
REQUIRED = ("id", "from", "to", "number", "issued_on", "summary", "urgency", "sha256", "pdf_base64")
ANSWERS = (("arrived", "01"), ("accepted", "03"))  # what the receiving province says, in order


@app.post("/api/edocs")
async def send(request: Request, x_axis_key: str = Header("")):
    if x_axis_key not in KEYS:
        return JSONResponse({"error": "unknown sender key"}, status_code=401)
    if STATE["delay_s"]:
        await asyncio.sleep(STATE["delay_s"])
    if STATE["fail_next"] > 0:
        STATE["fail_next"] -= 1
        return JSONResponse({"error": "axis busy"}, status_code=503)
    body = await request.json()
    missing = [f for f in REQUIRED if not body.get(f)]
    if missing:
        return JSONResponse({"error": f"missing fields: {', '.join(missing)}"}, status_code=400)
    try:
        pdf = base64.b64decode(body["pdf_base64"], validate=True)
    except ValueError:
        return JSONResponse({"error": "pdf_base64 is not base64"}, status_code=400)
    if hashlib.sha256(pdf).hexdigest() != body["sha256"]:
        return JSONResponse({"error": "the file does not match its sha256"}, status_code=400)
    SENDS[body["id"]] = SENDS.get(body["id"], 0) + 1
    if body["id"] not in EDOCS:
        now = datetime.now(timezone.utc).isoformat()
        EDOCS[body["id"]] = {
            "to": body["to"],
            "number": body["number"],
            "sha256": body["sha256"],
            "recalled": None,
            "statuses": [{"seq": i + 1, "status": s, "code": c, "at": now} for i, (s, c) in enumerate(ANSWERS)],
        }
    return JSONResponse({"result": "accepted", "id": body["id"]}, status_code=202)


@app.get("/api/edocs/{edoc_id}/statuses")
async def statuses(edoc_id: str, x_axis_key: str = Header("")):
    if x_axis_key not in KEYS:
        return JSONResponse({"error": "unknown sender key"}, status_code=401)
    edoc = EDOCS.get(edoc_id)
    if edoc is None:
        return JSONResponse({"error": "unknown document"}, status_code=404)
    listed = list(edoc["statuses"])
    if STATE["duplicate"]:
        listed = [s for s in listed for _ in (0, 1)]
    if STATE["reorder"]:
        listed.reverse()
    return {"id": edoc_id, "statuses": listed}


@app.post("/api/edocs/{edoc_id}/recall")
async def recall(edoc_id: str, request: Request, x_axis_key: str = Header("")):
    if x_axis_key not in KEYS:
        return JSONResponse({"error": "unknown sender key"}, status_code=401)
    if STATE["fail_next"] > 0:
        STATE["fail_next"] -= 1
        return JSONResponse({"error": "axis busy"}, status_code=503)
    edoc = EDOCS.get(edoc_id)
    if edoc is None:
        return JSONResponse({"error": "unknown document"}, status_code=404)
    if edoc["recalled"] is None:
        edoc["recalled"] = (await request.json()).get("reason") or "recalled"
        RECALLS[edoc_id] = 0
    RECALLS[edoc_id] += 1
    return {"id": edoc_id, "result": "recalled"}


class Control(BaseModel):
    fail_next: int = 0
    delay_s: float = 0.0
    duplicate: bool = False
    reorder: bool = False


@app.post("/control")
async def control(c: Control) -> dict:
    STATE.update(c.model_dump())
    return STATE


@app.get("/control/edocs")
async def edocs() -> dict:
    return {
        "delivered": {k: {"to": v["to"], "number": v["number"]} for k, v in EDOCS.items()},
        "sends": SENDS,
        "recalled": {k: v["recalled"] for k, v in EDOCS.items() if v["recalled"]},
        "recalls": RECALLS,
    }


if __name__ == "__main__":
    run(app, 8094)
