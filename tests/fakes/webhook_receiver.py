"""A webhook receiver on 127.0.0.1 for tests: a tiny HTTP/1.1 server on ``asyncio.start_server``.

It records every request (headers and body, and which connection it came on) and answers from a
script of status codes (the last one repeats), so tests can make the first attempt fail and the
retry succeed. Connections are kept alive (HTTP/1.1's default) until the client closes them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0  # 1 for the receiver's first connection, 2 for the next, ...

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers.get("mailhook-event", "")


@dataclass
class WebhookReceiver:
    """``async with WebhookReceiver() as r: r.url`` ...; ``statuses`` is the answer script."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    connections: int = 0  # how many connections were accepted
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _open: dict[asyncio.StreamWriter, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def __aenter__(self) -> WebhookReceiver:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.hang_up()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    def hang_up(self) -> None:
        """Close every open connection (their handlers then see the end of input)."""
        for writer in list(self._open):
            writer.close()

    @property
    def open_connections(self) -> int:
        """Connections the client has not closed yet."""
        return len(self._open)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def wait_for(self, match: Callable[[Received], bool], timeout: float = 15.0) -> Received:
        """The first request ``match`` accepts, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                found = next((r for r in self.received if match(r)), None)
                if found is not None:
                    return found
                self._arrived.clear()
                await self._arrived.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open[writer] = self.connections
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while not reader.at_eof():
                await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        finally:
            del self._open[writer]
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request on a kept-alive connection (nothing at all when the client closed it)."""
        request_line = (await reader.readline()).decode("latin-1").split()
        if not request_line:
            return
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = self.statuses[min(len(self.received), len(self.statuses) - 1)]
        path = request_line[1] if len(request_line) > 1 else ""
        self.received.append(Received(path, headers, body, self._open.get(writer, 0)))
        self._arrived.set()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
