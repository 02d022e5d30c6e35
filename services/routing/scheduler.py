"""The deadline scheduler: a loop in every routing instance. Its state lives in the database
(which due date each warning was sent for), so restarts and several instances are safe."""

from __future__ import annotations

import asyncio
import logging

from shared.outbox import Outbox
from shared.reference import Reference
from shared.settings import Settings
from services.routing.handlers import scan_deadlines

log = logging.getLogger(__name__)


async def run_scheduler(settings: Settings, pool, outbox: Outbox, ref: Reference) -> None:
    while True:
        try:
            counts = await scan_deadlines(pool, outbox, ref, extension_days=settings.apology_extension_days)
            if any(counts.values()):
                log.info("scheduler.pass overdue=%d at_risk=%d step_overdue=%d",
                         counts["overdue"], counts["at_risk"], counts["step_overdue"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed pass is retried at the next tick
            log.warning("scheduler.error %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(settings.scheduler_interval_s)
