"""Notify's own settings: quiet hours, limits and the message providers."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class NotifySettings(Settings):
    quiet_hours: str = Field("21:00-07:00", description="No non-urgent message in this local time window")
    urgent_events: str = Field("", description="Comma-separated event types sent even in quiet hours")
    rate_limit_per_hour: int = Field(6, ge=1, description="Messages per recipient per hour; more wait")
    sms_url: str = "http://127.0.0.1:8092"
    zalo_url: str = "http://127.0.0.1:8092"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    rating_url: str = Field(
        "",
        max_length=300,
        description="The public page where a citizen rates the handling of their dossier; the result's message "
        "links to it with ?ma=<dossier code> (empty: no link)",
    )


SETTINGS = NotifySettings
