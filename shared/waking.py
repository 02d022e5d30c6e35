"""Waiting for a wake-up with a time limit, without losing a cancellation.

``asyncio.wait_for(event.wait(), t)`` on Python 3.11 returns normally when the event is set in
the same loop turn as the task is cancelled: the cancellation is swallowed and a worker or the
relay goes on waiting (a shutdown then hangs for a whole idle period). ``asyncio.timeout``
counts cancellations and has no such race.
"""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` has passed; True if it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
        return True
    except TimeoutError:
        return False
