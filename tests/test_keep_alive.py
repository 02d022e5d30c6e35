"""A service, and each simulator, keeps an idle HTTP connection open longer than its clients
do (httpx: 5 s), so a client never reuses a connection the server is closing that instant.
With equal times the replayed day lost requests to a ReadError under the four-instant load."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

HEALTH = b"GET /health HTTP/1.1\r\nHost: lgsp\r\n\r\n"


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(HEALTH)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    await asyncio.wait_for(reader.readexactly(length), 5)
    return head


async def _idle_then_again(url: str) -> None:
    parts = urlparse(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        assert (await _exchange(reader, writer)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(6)  # longer than an httpx client keeps it idle
        assert (await _exchange(reader, writer)).startswith(b"HTTP/1.1 200"), f"{url} closed the connection"
    finally:
        writer.close()


async def test_an_idle_connection_outlives_the_clients_keep_alive(platform):
    # a service, and the stand-ins of third parties the platform and its tools call (the
    # replayed day lost a citizen's payment to a ReadError from the payment platform's)
    await asyncio.gather(*(_idle_then_again(platform[name].url) for name in ("intake", "payment", "population")))
