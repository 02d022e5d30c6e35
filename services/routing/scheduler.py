"""The deadline scheduler: one pass, run periodically by every routing instance. Its state
lives in the database (which due date each warning was sent for), so restarts and several
instances are safe."""

from __future__ import annotations

import logging

from services.routing.handlers import scan_deadlines
from services.routing.settings import RoutingSettings
from shared.clock import Clock
from shared.outbox import Outbox
from shared.reference import Reference

log = logging.getLogger(__name__)


async def scheduler_pass(settings: RoutingSettings, pool, outbox: Outbox, ref: Reference, clock: Clock) -> None:
    counts = await scan_deadlines(pool, outbox, ref, extension_days=settings.apology_extension_days, now=clock.now())
    if any(counts.values()):
        log.info(
            "scheduler.pass overdue=%d at_risk=%d step_overdue=%d",
            counts["overdue"],
            counts["at_risk"],
            counts["step_overdue"],
        )
