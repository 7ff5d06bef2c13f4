"""The whole path through a real Postfix: in over SMTP, LMTP to mailhook, the reply back out
through the same Postfix (submission relay) to the next hop."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailhook.services import Services
from tests.fakes.relay import RelaySink
from tests.harness.ports import free_port
from tests.harness.postfix import PostfixInstance
from tests.lmtp_client import make_message
from tests.support import activity, wait_for_jobs

pytestmark = pytest.mark.postfix
CATCH_PORT = free_port()


@pytest.fixture
def catch() -> Iterator[RelaySink]:
    sink = RelaySink(CATCH_PORT).start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def postfix(tmp_path: Path, make_settings: Any) -> Iterator[PostfixInstance]:
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


async def test_mail_in_through_postfix_reply_out_through_postfix(
    services: Services, runtime: Any, postfix: PostfixInstance, catch: RelaySink
) -> None:
    postfix.lmtp_targets = [("127.0.0.1", services.settings.lmtp.port)]  # known once mailhook runs
    await asyncio.to_thread(postfix.start)
    data = make_message(cc="carol@example.org", message_id="<via-postfix@example.org>")

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", postfix.smtp_port, local_hostname="client.test", timeout=30) as smtp:
            smtp.sendmail("alice@example.org", ["bot@agents.test"], data)

    await asyncio.to_thread(submit)
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
