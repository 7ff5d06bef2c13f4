"""Replies of external mailboxes: out through the account's SMTP, a copy in Sent, drafts in
Drafts with \\Draft, and \\Flagged $Important on an escalated original, all seen over IMAP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailhook.services import Services
from mailhook.store.models import Mailbox
from tests.fakes.llm import FakeLLM, completion, decision
from tests.fakes.relay import RelaySink
from tests.harness.dovecot import DovecotServer
from tests.harness.ports import free_port
from tests.support import activity, wait_for_jobs

from .conftest import ADDRESS, add_external, make_mail, make_message, spooled, until


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about IMAP and SMTP; test_door.py covers both databases."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


@pytest.fixture
def relay() -> Iterator[RelaySink]:
    """The installation's relay: external mailboxes must never use it."""
    sink = RelaySink(free_port()).start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def extra_env(extra_env: dict[str, str], relay: RelaySink) -> dict[str, str]:
    return {
        **extra_env,
        "MAILHOOK_OUTBOUND_MODE": "smtp",
        "MAILHOOK_OUTBOUND_RELAY_PORT": str(relay.port),
    }


def _flags(header: bytes) -> bytes:
    return header.partition(b"FLAGS (")[2].partition(b")")[0]


async def test_reply_leaves_through_the_account_smtp_and_is_filed_in_sent(
    services: Services, runtime: Any, dovecot: DovecotServer, relay: RelaySink, account_smtp: RelaySink
) -> None:
    await add_external(services, dovecot, smtp_port=account_smtp.port)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await wait_for_jobs(services, 1)
    assert relay.messages == [], "never through the installation's relay"
    [(sender, recipients, reply)] = account_smtp.messages
    assert account_smtp.logins == [ADDRESS]
    assert sender == ADDRESS and recipients == ["alice@customer.test"]
    [(flags, copy)] = await asyncio.to_thread(dovecot.messages, ADDRESS, "Sent")
    assert reply["Message-ID"].encode() in copy
    assert b"\\Seen" in _flags(flags)
    [row] = [a for a in await activity(services) if a.action == "replied"]
    assert row.detail["sent_copy"] == "Sent"


@pytest.mark.parametrize("mode", ["draft"])
async def test_draft_mode_appends_to_drafts_instead_of_sending(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink, mode: str
) -> None:
    await add_external(services, dovecot, smtp_port=account_smtp.port, mode=mode)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await wait_for_jobs(services, 1)
    assert account_smtp.messages == [], "a draft is not sent"
    [(flags, draft)] = await asyncio.to_thread(dovecot.messages, ADDRESS, "Drafts")
    assert b"\\Draft" in _flags(flags)
    assert b"Re: Opening hours?" in draft
    assert await asyncio.to_thread(dovecot.messages, ADDRESS, "Sent") == []
    [row] = [a for a in await activity(services) if a.action == "drafted"]
    assert row.detail["draft"] == "Drafts"


async def test_escalation_flags_the_original_and_does_not_answer_the_sender(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink, fake_llm: FakeLLM
) -> None:
    fake_llm.script = lambda payload: (200, completion(decision("escalate", reply="", trigger="refund")))
    await add_external(services, dovecot, smtp_port=account_smtp.port)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail("I want a refund"))
    await wait_for_jobs(services, 1)

    async def flagged() -> bytes | None:
        [(flags, _)] = await asyncio.to_thread(dovecot.messages, ADDRESS)
        return flags if b"\\Flagged" in flags else None

    flags = await until(flagged, what="the original flagged")
    assert b"$Important" in _flags(flags)
    assert all(rcpts != ["alice@customer.test"] for _, rcpts, _ in account_smtp.messages), "no reply"
    [row] = [a for a in await activity(services) if a.action == "escalated"]
    assert row.detail["flagged"] == 1


async def test_a_failed_sent_copy_is_noted_and_the_reply_is_not_sent_again(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink, fake_llm: FakeLLM
) -> None:
    fake_llm.delay = 1.0  # time to take the IMAP server away between the fetch and the reply
    await add_external(services, dovecot, smtp_port=account_smtp.port)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())
    await until(lambda: spooled(services), what="the message fetched")
    dovecot.stop()  # the Sent copy cannot be filed now
    jobs = await wait_for_jobs(services, 1)
    assert jobs[0].outcome == "replied"
    [row] = [a for a in await activity(services) if a.action == "replied"]
    assert row.detail["mail_store_error"] == "ImapUnavailable"
    await asyncio.sleep(1.0)
    assert len(account_smtp.messages) == 1, "one reply, however the copy went"


async def test_the_model_sees_the_earlier_thread_from_inbox_and_sent(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink, fake_llm: FakeLLM
) -> None:
    first = make_message("Opening hours?")
    first.replace_header("Message-ID", "<first@customer.test>")
    first.set_content("Do you open on Saturday mornings?\n")
    answer = make_message("Re: Opening hours?", sender=ADDRESS)
    answer.replace_header("Message-ID", "<answer@example.org>")
    answer["In-Reply-To"] = "<first@customer.test>"
    answer.set_content("Yes, from nine to noon.\n")
    unrelated = make_message("Opening hours?")
    unrelated.set_content("A stranger's message with the same subject.\n")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, first.as_bytes(), "INBOX", "\\Seen")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, unrelated.as_bytes(), "INBOX", "\\Seen")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, answer.as_bytes(), "Sent", "\\Seen")
    await add_external(services, dovecot, smtp_port=account_smtp.port)
    follow_up = make_message("Re: Opening hours?")
    follow_up["In-Reply-To"] = "<answer@example.org>"
    follow_up["References"] = '<first@customer.test> <answer@example.org> <"evil\\"id"@x>'
    follow_up.set_content("And on Sundays?\n")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, follow_up.as_bytes())
    await wait_for_jobs(services, 1)
    [payload] = fake_llm.requests
    user = payload["messages"][1]["content"]
    earlier = user.split('<email role="new">')[0]
    assert "Do you open on Saturday mornings?" in earlier and "Yes, from nine to noon." in earlier
    assert earlier.index("Saturday mornings") < earlier.index("nine to noon"), "oldest first"
    assert "A stranger's message" not in user, "the subject alone does not join a thread with ids"
    assert "And on Sundays?" not in earlier


async def test_a_deferring_account_smtp_is_retried_and_sends_once(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink
) -> None:
    account_smtp.mode = "defer"  # 451 at the end of DATA: certainly not taken (RFC 5321 §4.2.1)
    await add_external(services, dovecot, smtp_port=account_smtp.port)
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())

    async def retried() -> bool:
        jobs = await spooled(services)
        return bool(jobs) and jobs[0].attempts >= 2 and jobs[0].status == "queued"

    await until(retried, what="the job retried, not failed")
    assert account_smtp.messages == []
    account_smtp.mode = "accept"
    [job] = await wait_for_jobs(services, 1)
    assert job.outcome == "replied"
    assert len(account_smtp.messages) == 1
    assert len(await asyncio.to_thread(dovecot.messages, ADDRESS, "Sent")) == 1


async def test_an_smtp_host_resolving_to_loopback_is_refused_and_retried_until_fixed(
    services: Services, runtime: Any, dovecot: DovecotServer, account_smtp: RelaySink, relay: RelaySink
) -> None:
    # Only "127.0.0.1" is allow-listed: "localhost" reaches the same server but is refused.
    mailbox_id = await add_external(services, dovecot, smtp_port=account_smtp.port, smtp_host="localhost")
    await asyncio.to_thread(dovecot.deliver, ADDRESS, make_mail())

    async def refused() -> bool:
        jobs = await spooled(services)
        return (
            bool(jobs) and jobs[0].status == "queued" and "a loopback address" in (jobs[0].last_error or "")
        )

    await until(refused, what="the reply refused and kept for a retry")
    assert account_smtp.logins == [] and relay.messages == [], "no connection, no fallback to the relay"
    async with services.sessions() as session, session.begin():
        row = await session.get(Mailbox, mailbox_id)
        assert row is not None
        row.smtp_host = "127.0.0.1"
    [job] = await wait_for_jobs(services, 1)
    assert job.outcome == "replied" and len(account_smtp.messages) == 1
