"""A real bounce from a real Postfix: the reply leaves through Postfix, the next hop refuses it,
Postfix's own DSN comes back over LMTP and is recorded as ``bounced``, linked to that reply,
and answered with nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.models import OutgoingKind, Reply
from tests.harness.postfix import PostfixInstance
from tests.lmtp_client import make_message
from tests.support import activity, wait_for_jobs

from ..conftest import relay_through, start_towards, submit

pytestmark = pytest.mark.postfix


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database side of bounces runs on both in test_webhooks.py."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


@pytest.fixture
def relay_mode() -> str:
    return "reject"


@pytest.fixture
def extra_env(relaying_postfix: PostfixInstance) -> dict[str, str]:
    return relay_through(relaying_postfix)


async def test_postfix_dsn_is_recorded_and_linked(
    services: Services, runtime: Any, relaying_postfix: PostfixInstance
) -> None:
    await start_towards(relaying_postfix, services)
    await submit(relaying_postfix, "alice@example.org", ["bot@agents.test"], make_message())
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
