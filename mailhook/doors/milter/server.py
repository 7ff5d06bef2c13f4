"""The milter door's TCP server: one :class:`MilterSession` per connection, in the event loop.

Every connection is bounded: packets by :data:`~mailhook.doors.milter.protocol.DEFAULT_MAX_PACKET`,
the message by ``milter.max_message_bytes``, silence by ``milter.timeout_seconds``, concurrency by
``milter.max_connections`` (more connections wait for a slot; the MTA's own timeouts then apply
its ``default_action``). On a protocol error or timeout the connection is closed: the MTA applies
the ``default_action`` configured for this milter (``accept`` in postfix/main.cf.milter.fragment).
"""

from __future__ import annotations

import asyncio
import contextlib

from mailhook.logs import get_logger
from mailhook.settings import MilterSettings

from .protocol import DEFAULT_MAX_PACKET, PacketDecoder, ProtocolError
from .session import Checker, MilterSession

log = get_logger(__name__)

READ_CHUNK = 64 * 1024


class MilterServer:
    """Start with :meth:`start`, stop with :meth:`close` (which also ends open connections)."""

    def __init__(self, checker: Checker, settings: MilterSettings, *, max_packet: int = DEFAULT_MAX_PACKET):
        self._checker = checker
        self._settings = settings
        self._max_packet = max_packet
        self._slots = asyncio.Semaphore(settings.max_connections)
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("the milter server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on ``milter.host:milter.port``."""
        self._server = await asyncio.start_server(
            self._accept, self._settings.host, self._settings.port, reuse_address=True
        )

    async def close(self) -> None:
        """Stop listening, end open connections (the MTA applies its default action)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            async with self._slots:
                await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # close(): the connection ends below
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = MilterSession(
            self._checker,
            max_message_bytes=self._settings.max_message_bytes,
            on_error=self._settings.on_error,
        )
        decoder = PacketDecoder(self._max_packet)
        try:
            while not session.closed:
                async with asyncio.timeout(self._settings.timeout_seconds):
                    data = await reader.read(READ_CHUNK)
                if not data:
                    return
                decoder.feed(data)
                while not session.closed and (packet := decoder.next_packet()) is not None:
                    replies = await session.handle(packet)
                    if replies:
                        writer.write(b"".join(replies))
                        await writer.drain()
        except ProtocolError as exc:
            log.warning("milter_protocol_error", problem=str(exc))
        except TimeoutError:
            log.info("milter_connection_idle_timeout", seconds=self._settings.timeout_seconds)
        except ConnectionError as exc:
            log.info("milter_connection_lost", error=type(exc).__name__)
