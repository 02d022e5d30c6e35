"""Routing's own settings, besides the shared ones (shared/settings.py)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class RoutingSettings(Settings):
    apology_extension_days: float = Field(2.0, gt=0, description="Working days asked for in an apology")


SETTINGS = RoutingSettings
