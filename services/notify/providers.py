"""The providers that carry messages: SMS and Zalo gateways over HTTP, e-mail over SMTP.
Each send carries the notification's id as its idempotency key (Message-ID for e-mail)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import httpx


class ProviderError(Exception):
    """The provider did not take the message; it may be retried or another channel used."""


class HttpGateway:
    def __init__(self, http: httpx.AsyncClient, url: str, address_field: str) -> None:
        self._http, self._url, self._field = http, url, address_field

    async def send(self, notification_id: str, address: str, subject: str, body: str) -> str:
        try:
            r = await self._http.post(
                self._url, json={self._field: address, "text": body}, headers={"Idempotency-Key": notification_id}
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"{type(exc).__name__}") from exc
        if r.status_code != 200:
            raise ProviderError(f"HTTP {r.status_code}")
        return r.json()["message_id"]


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str = "dichvucong@lgsp.local") -> None:
        self._host, self._port, self._sender = host, port, sender

    async def send(self, notification_id: str, address: str, subject: str, body: str) -> str:
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = address
        msg["Subject"] = subject
        msg["Message-ID"] = f"<{notification_id}@lgsp.local>"
        msg.set_content(body, charset="utf-8")
        try:
            await asyncio.to_thread(self._deliver, msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderError(type(exc).__name__) from exc
        return msg["Message-ID"]

    def _deliver(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
            smtp.send_message(msg)


def providers(http: httpx.AsyncClient, settings) -> dict:
    return {
        "sms": HttpGateway(http, f"{settings.sms_url}/sms/send", "to"),
        "zalo": HttpGateway(http, f"{settings.zalo_url}/zalo/send", "phone"),
        "email": SmtpMailer(settings.smtp_host, settings.smtp_port),
    }
