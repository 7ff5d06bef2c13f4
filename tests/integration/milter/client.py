"""The MTA side of the milter protocol, for tests: negotiate, send a message, read the replies."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from mailhook.doors.milter import protocol as p

EVERY_ACTION = 0x1FF
EVERY_STEP = 0x1FFFFF
FINAL_REPLIES = {p.SMFIR_CONTINUE, p.SMFIR_ACCEPT, p.SMFIR_TEMPFAIL}


class MtaClient:
    """One milter connection as Postfix would drive it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> MtaClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, command: bytes, data: bytes = b"") -> None:
        self.writer.write(p.encode(command, data))
        await self.writer.drain()

    async def reply(self, timeout: float = 10.0) -> tuple[bytes, bytes]:
        """The next reply packet (command byte, data)."""
        async with asyncio.timeout(timeout):
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            data = await self.reader.readexactly(length)
        return data[:1], data[1:]

    async def negotiate(self) -> tuple[bytes, bytes]:
        await self.send(p.SMFIC_OPTNEG, struct.pack(">III", 6, EVERY_ACTION, EVERY_STEP))
        return await self.reply()

    async def message(
        self, sender: str, recipients: list[str], headers: list[tuple[str, str]], body: bytes
    ) -> list[tuple[bytes, bytes]]:
        """Envelope, headers and body; returns every reply to end-of-message, final one last."""
        await self.send(p.SMFIC_MACRO, b"Mi\0TESTQ1\0")
        steps: list[tuple[bytes, bytes]] = [
            (p.SMFIC_CONNECT, b"client.test\x004\x00\x19127.0.0.1\0"),
            (p.SMFIC_HELO, b"client.test\0"),
            (p.SMFIC_MAIL, f"<{sender}>\0".encode()),
            *[(p.SMFIC_RCPT, f"<{rcpt}>\0".encode()) for rcpt in recipients],
            *[(p.SMFIC_HEADER, f"{name}\0{value}\0".encode()) for name, value in headers],
            (p.SMFIC_EOH, b""),
            (p.SMFIC_BODY, body),
        ]
        for command, data in steps:
            await self.send(command, data)
            assert await self.reply() == (p.SMFIR_CONTINUE, b""), command
        await self.send(p.SMFIC_BODYEOB)
        replies = []
        while True:
            replies.append(await self.reply(timeout=30))
            if replies[-1][0] in FINAL_REPLIES:
                return replies

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closed the connection (EOF) within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(4096):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
