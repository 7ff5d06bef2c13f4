"""Malformed and hostile messages through the real LMTP door into the running pipeline.

Every corpus message is accepted (the door never parses), then each ends processed, skipped or
dead-lettered with its activity row: no worker crashes, nothing is lost, nothing is answered
twice, and a normal message afterwards is still answered. A ~50 MB message is processed under
the size limit and refused with one clean ``552`` per recipient over it.
"""

from __future__ import annotations

import asyncio
import base64
from email.utils import getaddresses
from typing import Any

import pytest

from mailhook.services import Services
from mailhook.store.accounts import Accounts
from tests.lmtp_client import LmtpClient, lmtp_send, make_message
from tests.reliability.accounting import FAST_RETRIES, SQLITE_ONLY, accounted_for
from tests.reliability.corpus import corpus
from tests.support import outbox, wait_for_jobs

FIFTY_MB = 50 * 1000 * 1000


@pytest.mark.parametrize("extra_env", [FAST_RETRIES])
async def test_malformed_corpus_is_accounted_for(runtime: Any, services: Services) -> None:
    port = services.settings.lmtp.port
    replies = {}
    for name, raw in corpus().items():
        result = await asyncio.to_thread(lmtp_send, port, "sender@example.org", ["bot@agents.test"], raw)
        replies[name] = result.data["bot@agents.test"]
    refused = {name: reply for name, reply in replies.items() if not reply.startswith("250 ")}
    assert not refused, "the door accepts whatever it can spool; the pipeline decides"
    accepted = len(replies)

    accounting = await accounted_for(services, accepted)
    assert accounting.done + accounting.dead == accepted
    assert accounting.dead == 0, "malformed mail is a final outcome, not a retry loop"
    outcomes = dict(
        zip(replies, [job.outcome for job in await wait_for_jobs(services, accepted)], strict=True)
    )
    assert outcomes["ten_thousand_recipients"] == "escalated", "no reply-all to 10,000 addresses"
    widest = max(
        len(getaddresses([str(v) for v in (*m.get_all("To", []), *m.get_all("Cc", []))]))
        for m in await outbox(services)
    )
    assert widest < 100, "no reply went to a crowd"

    # The workers survived: an ordinary message is still answered.
    normal = make_message(sender="carol@example.org", subject="still there?")
    await asyncio.to_thread(lmtp_send, port, "carol@example.org", ["bot@agents.test"], normal)
    accounting = await accounted_for(services, accepted + 1)
    assert accounting.outcomes["replied"] >= 1


def fifty_megabyte_message() -> bytes:
    """A text part and a ~50 MB base64 attachment.

    The base64 lines are 996 octets (RFC 5322 allows 998) rather than MIME's usual 76: aiosmtpd
    reads the data phase line by line, and 76-octet lines make this one message take 20 to 45 s
    here (docs/reliability.md); the size, not the line count, is what this test is about.
    """
    encoded = base64.b64encode(b"\x00\x01binary" * (FIFTY_MB * 3 // 4 // 8))
    payload = b"".join(encoded[i : i + 996] + b"\r\n" for i in range(0, len(encoded), 996))
    head = (
        b"From: Big Sender <big@example.org>\r\nTo: bot@agents.test, help@agents.test\r\n"
        b"Subject: the scans\r\nMessage-ID: <fifty@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain\r\n\r\nHere are the scans.\r\n"
        b'--big\r\nContent-Type: application/octet-stream; name="scans.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + payload + b"--big--\r\n"


async def _two_mailboxes(services: Services) -> None:
    await Accounts(services.sessions).add_mailbox("owner@example.com", "help@agents.test")


@SQLITE_ONLY
@pytest.mark.parametrize("extra_env", [{**FAST_RETRIES, "MAILHOOK_LMTP_MAX_MESSAGE_BYTES": str(64 << 20)}])
async def test_fifty_megabytes_under_the_limit_are_processed(runtime: Any, services: Services) -> None:
    raw = fifty_megabyte_message()
    assert FIFTY_MB * 0.95 < len(raw) < services.settings.lmtp.max_message_bytes
    result = await asyncio.to_thread(
        lmtp_send, services.settings.lmtp.port, "big@example.org", ["bot@agents.test"], raw
    )
    assert result.data["bot@agents.test"].startswith("250 ")
    accounting = await accounted_for(services, 1, timeout=90)
    assert accounting.outcomes == {"replied": 1}


@SQLITE_ONLY
@pytest.mark.parametrize("extra_env", [FAST_RETRIES])
async def test_fifty_megabytes_over_the_limit_get_one_552_per_recipient(
    runtime: Any, services: Services
) -> None:
    await _two_mailboxes(services)
    raw = fifty_megabyte_message()
    assert len(raw) > services.settings.lmtp.max_message_bytes, "the default limit is 25 MiB"

    def deliver_then_continue() -> tuple[dict[str, str], dict[str, str]]:
        with LmtpClient("127.0.0.1", services.settings.lmtp.port, timeout=60) as client:
            big = client.send("big@example.org", ["bot@agents.test", "help@agents.test"], raw)
            small = client.send("big@example.org", ["bot@agents.test"], make_message(subject="small"))
        return big.data, small.data

    big, small = await asyncio.to_thread(deliver_then_continue)
    assert big == dict.fromkeys(
        ("bot@agents.test", "help@agents.test"), "552 5.3.4 Message too big for system"
    )
    assert small["bot@agents.test"].startswith("250 "), "the session goes on after a refusal"
    accounting = await accounted_for(services, 1)
    assert accounting.outcomes == {"replied": 1}, "only the small message was accepted"
