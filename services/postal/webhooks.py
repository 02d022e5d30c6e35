"""Carrier webhooks: authenticated with HMAC-SHA256 over ``"<timestamp>.<body>"`` and a
timestamp close to now, so forged and replayed calls are refused."""

from __future__ import annotations

import hashlib
import hmac


class WebhookRefused(Exception):
    pass


def verify(
    secrets: list[str], timestamp: str | None, signature: str | None, body: bytes, max_skew_s: int, now: float
) -> None:
    """``secrets``: the accepted keys (two while one is rotated out); ``now``: the platform
    clock's instant as Unix seconds."""
    if not timestamp or not signature:
        raise WebhookRefused("missing X-Carrier-Timestamp or X-Carrier-Signature")
    if not (timestamp.isascii() and signature.isascii()):
        # a hex digest and a number are ASCII; anything else is refused before it is compared
        raise WebhookRefused("X-Carrier-Timestamp and X-Carrier-Signature must be ASCII")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise WebhookRefused("X-Carrier-Timestamp is not a number") from exc
    if abs(now - ts) > max_skew_s:
        raise WebhookRefused("timestamp outside the accepted window (replay?)")
    signed = timestamp.encode() + b"." + body
    # every key is compared, so the time taken does not tell which one matched
    matches = [
        hmac.compare_digest(hmac.new(s.encode(), signed, hashlib.sha256).hexdigest(), signature) for s in secrets
    ]
    if not any(matches):
        raise WebhookRefused("bad signature")
