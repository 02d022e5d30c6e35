"""Postal's own settings: the carrier and its signed webhooks."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import Settings


class PostalSettings(Settings):
    carrier_url: str = "http://127.0.0.1:8091"
    carrier_webhook_secret_previous: SecretStr | None = Field(
        None,
        description="The key being rotated out, still accepted: set it to the old key, switch the carrier, then unset it",
    )
    carrier_webhook_secret: SecretStr | None = Field(None, description="HMAC key of the carrier's webhooks")
    webhook_max_skew_s: int = Field(300, description="Webhooks older or newer than this are refused as replays")


SETTINGS = PostalSettings
