"""A real bounce from a real Postfix: the reply leaves through Postfix, the next hop refuses it,
Postfix's own DSN comes back over LMTP and is recorded as ``bounced``, linked to that reply,
and answered with nothing."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.models import OutgoingKind, Reply
from tests.fakes.relay import RelaySink
from tests.harness.ports import free_port
from tests.harness.postfix import PostfixInstance
from tests.lmtp_client import make_message
from tests.support import activity, wait_for_jobs

pytestmark = pytest.mark.postfix
CATCH_PORT = free_port()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database side of bounces runs on both in test_webhooks.py."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


@pytest.fixture
def catch() -> Iterator[RelaySink]:
    sink = RelaySink(CATCH_PORT, mode="reject").start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def postfix(tmp_path: Path) -> Iterator[PostfixInstance]:
    if not PostfixInstance.available():
        pytest.skip(PostfixInstance.unavailable_reason() or "no postfix")
    instance = PostfixInstance(
        tmp_path / "postfix", lmtp_targets=[], domains=["agents.test"], relay_catch_port=CATCH_PORT
    )
    yield instance
    instance.close()


@pytest.fixture
def extra_env(postfix: PostfixInstance) -> dict[str, str]:
    return {
        "MAILHOOK_OUTBOUND_MODE": "smtp",
        "MAILHOOK_OUTBOUND_RELAY_HOST": "127.0.0.1",
        "MAILHOOK_OUTBOUND_RELAY_PORT": str(postfix.smtp_port),
    }


async def test_postfix_dsn_is_recorded_and_linked(
    services: Services, runtime: Any, postfix: PostfixInstance, catch: RelaySink
) -> None:
    postfix.lmtp_targets = [("127.0.0.1", services.settings.lmtp.port)]
    await asyncio.to_thread(postfix.start)

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", postfix.smtp_port, local_hostname="client.test", timeout=30) as smtp:
            smtp.sendmail("alice@example.org", ["bot@agents.test"], make_message())

    await asyncio.to_thread(submit)
    await wait_for_jobs(services, 2, timeout=60)  # the message, then Postfix's bounce of the reply
    rows = await activity(services)
    assert [r.action for r in rows] == ["replied", "bounced"]
    bounced = rows[1]
    assert bounced.detail["kind"] == "hard" and bounced.detail["status"] == "5.7.1"
    async with services.sessions() as session:
        reply = await session.scalar(select(Reply).where(Reply.kind == OutgoingKind.REPLY.value))
        replies = (await session.scalars(select(Reply))).all()
    assert reply is not None and bounced.detail["reply_message_id"] == reply.message_id
    assert reply.last_error.startswith("bounced: hard 5.7.1")
    assert len(replies) == 1, "nothing was sent in answer to the bounce"
