"""The console's own settings: where it reads the services, and its sessions."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class ConsoleSettings(Settings):
    intake_url: str = "http://127.0.0.1:8081"
    routing_url: str = "http://127.0.0.1:8082"
    postal_url: str = "http://127.0.0.1:8083"
    notify_url: str = "http://127.0.0.1:8084"
    documents_url: str = "http://127.0.0.1:8086"
    console_url: str | None = Field(
        None,
        max_length=300,
        pattern=r"^https?://[^/?#]+$",
        description="The console's public address (scheme, host, port), where the identity "
        "provider sends people back; default http://127.0.0.1:<http_port>",
    )
    console_sessions_max: int = Field(5000, ge=1, le=1_000_000, description="Signed-in console sessions kept at once")


SETTINGS = ConsoleSettings
