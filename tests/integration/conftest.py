"""Fixtures for the tests that run mail through a private Postfix (tests/harness/postfix.py).

``catch`` is the next hop: an SMTP sink that receives what Postfix relays on (replies, bounces,
mail for other domains), answering as ``relay_mode`` says. ``relaying_postfix`` is a Postfix for
``agents.test`` that relays everything else to ``catch``; it is not started, because its LMTP
target (mailhook's door) only has a port once mailhook runs: :func:`start_towards` does that.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailhook.services import Services
from tests.fakes.relay import RelaySink
from tests.harness.ports import free_port
from tests.harness.postfix import PostfixInstance


@pytest.fixture
def relay_mode() -> str:
    """What the next hop answers (``RelaySink.mode``); a test module overrides it."""
    return "accept"


@pytest.fixture
def catch(relay_mode: str) -> Iterator[RelaySink]:
    sink = RelaySink(free_port(), mode=relay_mode).start()
    try:
        yield sink
    finally:
        sink.stop()


def new_postfix(
    tmp_path: Path, catch: RelaySink, lmtp_port: int | None = None, milter_port: int | None = None
) -> PostfixInstance:
    """A Postfix for agents.test (LMTP to ``lmtp_port``) relaying the rest to ``catch``."""
    if not PostfixInstance.available():
        pytest.skip(PostfixInstance.unavailable_reason() or "no postfix")
    targets = [("127.0.0.1", lmtp_port)] if lmtp_port else []
    return PostfixInstance(
        tmp_path / "postfix", targets, ["agents.test"], relay_catch_port=catch.port, milter_port=milter_port
    )


@pytest.fixture
def relaying_postfix(tmp_path: Path, catch: RelaySink) -> Iterator[PostfixInstance]:
    instance = new_postfix(tmp_path, catch)
    yield instance
    instance.close()


def relay_through(postfix: PostfixInstance) -> dict[str, str]:
    """mailhook settings that send replies out through this Postfix (its SMTP port)."""
    return {
        "MAILHOOK_OUTBOUND_MODE": "smtp",
        "MAILHOOK_OUTBOUND_RELAY_HOST": "127.0.0.1",
        "MAILHOOK_OUTBOUND_RELAY_PORT": str(postfix.smtp_port),
    }


async def start_towards(postfix: PostfixInstance, services: Services) -> None:
    """Start Postfix with mailhook's running LMTP door as the agent domain's next hop."""
    postfix.lmtp_targets = [("127.0.0.1", services.settings.lmtp.port)]
    await asyncio.to_thread(postfix.start)


async def submit(postfix: PostfixInstance, sender: str, recipients: list[str], data: bytes) -> None:
    """Send one message into Postfix over SMTP, as an outside MTA would."""

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", postfix.smtp_port, local_hostname="client.test", timeout=30) as smtp:
            smtp.sendmail(sender, recipients, data)

    await asyncio.to_thread(send)
