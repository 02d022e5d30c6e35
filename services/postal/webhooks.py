"""Carrier webhooks: authenticated with HMAC-SHA256 over ``"<timestamp>.<body>"`` and a
timestamp close to now, so forged and replayed calls are refused."""

from __future__ import annotations

import hashlib
import hmac


class WebhookRefused(Exception):
    pass


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, max_skew_s: int,
           now: float) -> None:
    """``now``: the platform clock's instant as Unix seconds."""
    if not timestamp or not signature:
        raise WebhookRefused("missing X-Carrier-Timestamp or X-Carrier-Signature")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise WebhookRefused("X-Carrier-Timestamp is not a number") from exc
    if abs(now - ts) > max_skew_s:
        raise WebhookRefused("timestamp outside the accepted window (replay?)")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise WebhookRefused("bad signature")
