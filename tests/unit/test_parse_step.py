"""The parse step keeps the event loop turning while it parses a large message."""

from __future__ import annotations

import asyncio
import base64

from mailhook.pipeline.steps.parse import THREAD_PARSE_BYTES, parsed


def large_message(size: int) -> bytes:
    payload = base64.encodebytes(b"\x00\x01binary" * (size // 8))
    return (
        b"From: alice@example.org\r\nTo: bot@agents.test\r\nSubject: scans\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe scans are attached.\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + payload.replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )


async def test_other_tasks_run_while_a_large_message_is_parsed() -> None:
    raw = large_message(8 * THREAD_PARSE_BYTES)
    ticks = 0
    parsing = asyncio.create_task(parsed(raw))

    async def tick() -> None:
        nonlocal ticks
        while not parsing.done():
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    message = await parsing
    await ticker
    assert message.subject == "scans" and "attached" in message.text
    # On the loop itself the parse would leave the ticker no turn at all until it finished.
    assert ticks >= 3


async def test_small_messages_parse_the_same_way() -> None:
    raw = large_message(THREAD_PARSE_BYTES // 4)
    assert len(raw) < THREAD_PARSE_BYTES
    message = await parsed(raw)
    assert message.subject == "scans" and "attached" in message.text
