"""The wait a worker and the relay idle in: a cancellation that arrives as the wake-up does
must still end the task (a lost one hung the relay's shutdown for its whole idle period)."""

from __future__ import annotations

import asyncio

import pytest

from shared.waking import woken


async def test_a_cancellation_arriving_with_the_wake_up_is_not_lost():
    wake = asyncio.Event()
    task = asyncio.create_task(woken(wake, timeout_s=3600))
    await asyncio.sleep(0)  # the task is now waiting
    wake.set()
    task.cancel()  # in the same turn of the loop as the wake-up
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_woken_says_whether_the_event_came_before_the_limit():
    wake = asyncio.Event()
    assert await woken(wake, timeout_s=0.01) is False
    asyncio.get_running_loop().call_later(0.01, wake.set)
    assert await woken(wake, timeout_s=5) is True
