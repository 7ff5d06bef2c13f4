"""The milter door's TCP server on loopback: well-formed sessions, hostile peers, limits, shutdown.

Whatever a peer sends, the server answers or closes the connection, within seconds, and keeps
serving other connections.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from mailhook.doors.milter import protocol as p
from mailhook.doors.milter.server import MilterServer
from mailhook.doors.milter.verdict import Collected, Verdict
from mailhook.settings import MilterSettings

from .client import MtaClient


class HeaderChecker:
    """Adds one header with the body size: enough to see the server relay a verdict."""

    async def verdict(self, message: Collected) -> Verdict:
        return Verdict(add=(("X-Seen", str(len(message.body))),))


@pytest.fixture
async def server() -> AsyncIterator[MilterServer]:
    running = MilterServer(HeaderChecker(), MilterSettings(port=0, timeout_seconds=2.0, max_connections=4))
    await running.start()
    try:
        yield running
    finally:
        await running.close()


async def assert_still_serving(server: MilterServer) -> None:
    client = await MtaClient.connect(server.port)
    assert (await client.negotiate())[0] == p.SMFIC_OPTNEG
    replies = await client.message("a@example.org", ["b@example.org"], [("Subject", "hi")], b"abc\r\n")
    assert replies == [(p.SMFIR_ADDHEADER, b"X-Seen\x005\0"), (p.SMFIR_CONTINUE, b"")]
    await client.close()


async def test_a_well_formed_session_gets_its_verdict(server: MilterServer) -> None:
    await assert_still_serving(server)


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
        pytest.param(struct.pack(">I", 0xFFFFFFFF) + b"B" + b"x" * 1000, id="4GiB-length"),
        pytest.param(struct.pack(">I", 0), id="zero-length"),
        pytest.param(p.encode(p.SMFIC_HELO, b"x\0"), id="before-optneg"),
        pytest.param(p.encode(p.SMFIC_OPTNEG, b"\0\0"), id="short-optneg"),
        pytest.param(
            p.encode(p.SMFIC_OPTNEG, struct.pack(">III", 6, 0x1FF, 0)) + p.encode(b"Z"), id="unknown"
        ),
        pytest.param(
            p.encode(p.SMFIC_OPTNEG, struct.pack(">III", 6, 0x1FF, 0)) + p.encode(p.SMFIC_HEADER, b"no-nul"),
            id="bad-header",
        ),
        pytest.param(
            p.encode(p.SMFIC_OPTNEG, struct.pack(">III", 6, 0x1FF, 0)) + b"\0\0\1\0B", id="truncated"
        ),
    ],
)
async def test_hostile_input_closes_the_connection_and_the_server_lives_on(
    server: MilterServer, hostile: bytes
) -> None:
    client = await MtaClient.connect(server.port)
    client.writer.write(hostile)
    await client.writer.drain()
    client.writer.write_eof()
    assert await client.closed_by_server(timeout=5), "closed, not hung"
    await client.close()
    await assert_still_serving(server)


async def test_a_silent_peer_is_disconnected_after_the_timeout(server: MilterServer) -> None:
    client = await MtaClient.connect(server.port)
    await client.negotiate()
    assert await client.closed_by_server(timeout=5)
    await client.close()


async def test_connections_over_the_limit_wait_for_a_slot() -> None:
    running = MilterServer(HeaderChecker(), MilterSettings(port=0, timeout_seconds=5.0, max_connections=1))
    await running.start()
    try:
        first = await MtaClient.connect(running.port)
        await first.negotiate()
        second = await MtaClient.connect(running.port)
        await second.send(p.SMFIC_OPTNEG, struct.pack(">III", 6, 0x1FF, 0))
        with pytest.raises(TimeoutError):
            await second.reply(timeout=0.5)
        await first.send(p.SMFIC_QUIT)
        assert (await second.reply(timeout=5))[0] == p.SMFIC_OPTNEG, "served once the slot is free"
        await first.close()
        await second.close()
    finally:
        await running.close()


async def test_close_ends_open_connections() -> None:
    running = MilterServer(HeaderChecker(), MilterSettings(port=0, timeout_seconds=60.0))
    await running.start()
    client = await MtaClient.connect(running.port)
    await client.negotiate()
    await asyncio.wait_for(running.close(), 5)
    assert await client.closed_by_server(timeout=5)
    await client.close()
