"""The whole path through a real Postfix: in over SMTP, LMTP to mailhook, the reply back out
through the same Postfix (submission relay) to the next hop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mailhook.services import Services
from tests.fakes.relay import RelaySink
from tests.harness.postfix import PostfixInstance
from tests.lmtp_client import make_message
from tests.support import activity, wait_for_jobs

from .conftest import relay_through, start_towards, submit

pytestmark = pytest.mark.postfix


@pytest.fixture
def extra_env(relaying_postfix: PostfixInstance) -> dict[str, str]:
    return relay_through(relaying_postfix)


async def test_mail_in_through_postfix_reply_out_through_postfix(
    services: Services, runtime: Any, relaying_postfix: PostfixInstance, catch: RelaySink
) -> None:
    await start_towards(relaying_postfix, services)
    data = make_message(cc="carol@example.org", message_id="<via-postfix@example.org>")
    await submit(relaying_postfix, "alice@example.org", ["bot@agents.test"], data)
    [job] = await wait_for_jobs(services, 1, timeout=30)
    assert job.source == "lmtp" and job.envelope_sender == "alice@example.org"
    for _ in range(300):
        if catch.messages:
            break
        await asyncio.sleep(0.1)
    [(sender, rcpts, reply)] = catch.messages
    assert sender == "bot@agents.test"
    assert sorted(rcpts) == ["alice@example.org", "carol@example.org"], "reply-all, all in the envelope"
    assert reply["In-Reply-To"] == "<via-postfix@example.org>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert [r.action for r in await activity(services)] == ["replied"]
