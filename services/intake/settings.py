"""Intake's own settings: receipt rules and the national portal it syncs to."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import Settings


class IntakeSettings(Settings):
    backdate_max_days: int = Field(30, ge=0, description="How far back a counter may record a receipt time")
    portal_url: str = "http://127.0.0.1:8093"
    portal_client_id: str = "lgsp-ninh-binh"
    portal_client_secret: SecretStr | None = Field(None, description="Our secret at the national portal")


SETTINGS = IntakeSettings
