"""Small helpers for tests that wait on asynchronous effects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.1,
                     what: str = "condition") -> T:
    """Poll ``probe`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def header(record, name: str) -> str | None:
    for k, v in record.headers or ():
        if k == name:
            return v.decode("utf-8")
    return None


from ops.clients import (  # noqa: E402,F401 - re-exported for tests
    APPLICANT, COMMUNE, OFFICIAL, RESULT, Agencies, documents_for, submission,
)
