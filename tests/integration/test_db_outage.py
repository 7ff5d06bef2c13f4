"""A real PostgreSQL outage: the door answers 4xx (never 5xx), nothing is lost, all recovers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mailhook.services import Services
from tests.harness.postgres import PostgresServer
from tests.lmtp_client import lmtp_send, make_message
from tests.support import outbox, wait_for_jobs

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    """A PostgreSQL of this test's own, so stopping it leaves the other tests alone."""
    return own_postgres.url("outage")


async def test_database_down_is_temporary_then_recovers(
    services: Services, runtime: Any, own_postgres: PostgresServer
) -> None:
    running = services
    port = running.settings.lmtp.port
    before = await asyncio.to_thread(lmtp_send, port, "a@example.org", ["bot@agents.test"], make_message())
    assert before.data["bot@agents.test"].startswith("250")
    await wait_for_jobs(running, 1)

    await asyncio.to_thread(own_postgres.stop)
    during = await asyncio.to_thread(
        lmtp_send, port, "a@example.org", ["bot@agents.test"], make_message(subject="during the outage")
    )
    # The recipient may be known from the door's cache (then DATA answers); either way: 4xx.
    answer = during.data.get("bot@agents.test") or during.rcpt["bot@agents.test"]
    assert answer.startswith("451 4.3.0"), "4xx so the MTA keeps the mail"

    unknown = await asyncio.to_thread(
        lmtp_send, port, "a@example.org", ["not-cached@agents.test"], make_message(subject="x")
    )
    assert unknown.rcpt["not-cached@agents.test"].startswith("451 4.3.0"), "no bounce while the DB is down"

    await asyncio.to_thread(own_postgres.start)
    after = await asyncio.to_thread(
        lmtp_send, port, "a@example.org", ["bot@agents.test"], make_message(subject="during the outage")
    )
    assert after.data["bot@agents.test"].startswith("250"), "the MTA's retry is accepted"
    await wait_for_jobs(running, 2)
    assert len(await outbox(running)) == 2
