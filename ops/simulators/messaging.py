"""SMS and Zalo providers over HTTP, and an SMTP server, in one process.

HTTP: ``POST /sms/send`` {to, text} and ``POST /zalo/send`` {phone, text}, each with an
``Idempotency-Key`` header: a repeated key returns the first message id and sends nothing new.
SMTP on ``--smtp-port``: messages are kept; a repeated Message-ID is stored once.
``POST /control`` {"down": ["sms", "zalo", "email"], "delay_s": 2} makes those fail (HTTP 503,
SMTP 451), and the HTTP gateways answer only after the delay (a slow provider).
``GET /control/messages`` lists what was delivered.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import uuid

from aiosmtpd.controller import Controller
from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ops.simulators.common import make_app, run

app = make_app("messaging")
DOWN: set[str] = set()
SLOW = {"delay_s": 0.0}
DELIVERED: list[dict] = []
BY_KEY: dict[str, str] = {}
REQUESTS: dict[str, int] = {}


class Sms(BaseModel):
    to: str
    text: str


class Zalo(BaseModel):
    phone: str
    text: str


def _accept(channel: str, to: str, text: str, key: str | None):
    REQUESTS[channel] = REQUESTS.get(channel, 0) + 1
    if channel in DOWN:
        return JSONResponse({"error": f"{channel} gateway unavailable"}, status_code=503)
    if key and key in BY_KEY:
        return {"message_id": BY_KEY[key], "duplicate": True}
    message_id = str(uuid.uuid4())
    if key:
        BY_KEY[key] = message_id
    DELIVERED.append({"channel": channel, "to": to, "text": text, "key": key, "message_id": message_id})
    return {"message_id": message_id, "duplicate": False}


@app.post("/sms/send")
async def send_sms(msg: Sms, idempotency_key: str | None = Header(None)):
    await asyncio.sleep(SLOW["delay_s"])
    return _accept("sms", msg.to, msg.text, idempotency_key)


@app.post("/zalo/send")
async def send_zalo(msg: Zalo, idempotency_key: str | None = Header(None)):
    await asyncio.sleep(SLOW["delay_s"])
    return _accept("zalo", msg.phone, msg.text, idempotency_key)


class Control(BaseModel):
    down: list[str] = []
    delay_s: float = Field(0.0, ge=0, le=30)


@app.post("/control")
async def control(c: Control) -> dict:
    DOWN.clear()
    DOWN.update(c.down)
    SLOW["delay_s"] = c.delay_s
    return {"down": sorted(DOWN), "delay_s": c.delay_s}


@app.get("/control/messages")
async def messages() -> dict:
    return {"delivered": DELIVERED, "requests": REQUESTS}


class SmtpHandler:
    async def handle_DATA(self, server, session, envelope):
        REQUESTS["email"] = REQUESTS.get("email", 0) + 1
        if "email" in DOWN:
            return "451 4.3.0 mail service temporarily unavailable"
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        key = msg["Message-ID"]
        if key and key in BY_KEY:
            return "250 OK (duplicate Message-ID, kept once)"
        BY_KEY[key] = key
        DELIVERED.append(
            {
                "channel": "email",
                "to": ",".join(envelope.rcpt_tos),
                "subject": str(msg["Subject"]),
                "text": msg.get_content(),
                "key": key,
                "message_id": key,
            }
        )
        return "250 OK"


if __name__ == "__main__":
    smtp_port = int(os.environ.get("SIM_SMTP_PORT", "8025"))
    controller = Controller(SmtpHandler(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        run(app, 8092)
    finally:
        controller.stop()
