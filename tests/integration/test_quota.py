"""Credits in the pipeline: replies cost one, at zero the agents pause with ONE owner notice,
and a grant resumes them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from mailhook.billing.credits import Credits
from mailhook.services import Services
from mailhook.store.models import Mailbox, User
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, outbox, wait_for_jobs

pytestmark = pytest.mark.parametrize(
    "extra_env", [{"MAILHOOK_BILLING_ENFORCE_QUOTA": "true", "MAILHOOK_BILLING_FREE_CREDITS": "2"}]
)


async def send(services: Services, n: int) -> None:
    port = services.settings.lmtp.port
    data = make_message(sender=f"customer{n}@example.org", subject=f"question {n}")
    await asyncio.to_thread(lmtp_send, port, f"customer{n}@example.org", ["bot@agents.test"], data)
    await wait_for_jobs(services, n)


async def mailbox_status(services: Services) -> str:
    async with services.sessions() as session:
        return str(await session.scalar(select(Mailbox.status)))


async def test_credits_run_out_pause_and_resume(services: Services, runtime: Any) -> None:
    async with services.sessions() as session, session.begin():
        owner = await session.scalar(select(User))
        assert owner is not None
        owner.free_credits = 2  # the runtime fixture created the user before the override applied
    credits = Credits(services.sessions, services.settings)
    await send(services, 1)
    assert await credits.remaining(owner.id) == 1
    assert await mailbox_status(services) == "active"
    await send(services, 2)
    assert await credits.remaining(owner.id) == 0
    assert await mailbox_status(services) == "pending_billing"
    await send(services, 3)
    rows = await activity(services)
    assert [r.action for r in rows] == ["replied", "replied", "skipped"]
    assert rows[-1].reason == "mailbox is pending_billing"
    notices = [m for m in await outbox(services) if m["To"] == "owner@example.com"]
    assert len(notices) == 1 and "Out of credits" in notices[0]["Subject"]

    assert await credits.grant(owner.id, 500, "admin", "test-grant-1")
    assert await mailbox_status(services) == "active", "credits arriving resume the agents"
    await send(services, 4)
    assert [r.action for r in await activity(services)][-1] == "replied"
    assert await credits.remaining(owner.id) == 499
