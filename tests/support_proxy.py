"""A slow store for tests: a TCP proxy in front of the MongoDB-protocol server that holds every call back.

Each message a client sends (the MongoDB wire protocol frames every message with its length in the first four
bytes, little-endian) is read whole, held `delay` seconds, then passed on; answers come back unhindered. A
client therefore sees every call, including the driver's handshakes and heartbeats, take `delay` longer:
a store that is up but slow, which is what back-pressure is about (a store that is down is the outage tests').
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

HEADER = struct.Struct("<i")


@dataclass
class SlowProxy:
    """Listens on 127.0.0.1 (a free port); `url` is the MongoDB URL to give a service instead of the real one."""

    upstream_url: str
    delay: float = 0.5
    calls: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        # directConnection: the driver must not follow the server's own address around the proxy.
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = urlsplit(self.upstream_url)
        try:
            server_reader, server_writer = await asyncio.open_connection(
                upstream.hostname or "127.0.0.1", upstream.port or 27017
            )
        except OSError:
            client_writer.close()
            return
        calls = asyncio.create_task(self._held(client_reader, server_writer))
        answers = asyncio.create_task(_pipe(server_reader, client_writer))
        self._tasks |= {calls, answers}
        try:
            await asyncio.wait({calls, answers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (calls, answers):
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, server_writer):
                writer.close()

    async def _held(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                body = await reader.readexactly(length - HEADER.size)
                await asyncio.sleep(self.delay)
                self.calls += 1
                writer.write(header + body)
                await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
