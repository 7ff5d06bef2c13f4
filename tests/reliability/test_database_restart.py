"""PostgreSQL crashes and restarts while 100 messages arrive and are processed.

The sender behaves like Postfix: a ``4xx`` (or a dropped connection) means "try again later",
a ``5xx`` would be a bounce and fails the test. The server is crashed (``pg_ctl stop -m
immediate``: no checkpoint, every client cut off) in the middle of the load and comes back a
second later. Afterwards every message is accounted for exactly once: 100 jobs, 100 replies,
no reply twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest

from mailhook.services import Services
from tests.fakes.llm import FakeLLM
from tests.harness.postgres import PostgresServer
from tests.lmtp_client import LmtpClient, make_message
from tests.reliability.accounting import FAST_RETRIES, accounted_for

pytestmark = pytest.mark.postgres
TOTAL = 100


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    return own_postgres.url("outage")


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {
        **FAST_RETRIES,
        # A job whose bookkeeping failed with the database keeps its lease until it expires;
        # shorter here so the test does not wait out the 300 s default (docs/reliability.md).
        "MAILHOOK_SPOOL_LEASE_SECONDS": "10",
    }


class PatientSender:
    """Delivers its messages over reused LMTP connections, retrying each on 4xx like an MTA."""

    def __init__(self, port: int, numbers: range, progress: threading.Barrier | None = None) -> None:
        self.port = port
        self.numbers = numbers
        self.accepted = 0
        self.deferrals = 0
        self.progress = progress

    def run(self) -> None:
        deadline = time.monotonic() + 90
        client: LmtpClient | None = None
        for n in self.numbers:
            raw = make_message(
                sender=f"c{n}@example.org", subject=f"order {n}", message_id=f"<db-{n}@example.org>"
            )
            while True:
                assert time.monotonic() < deadline, f"stuck at message {n}"
                try:
                    client = client or LmtpClient("127.0.0.1", self.port, timeout=20)
                    result = client.send(f"c{n}@example.org", ["bot@agents.test"], raw)
                    reply = result.data.get("bot@agents.test") or result.rcpt["bot@agents.test"]
                except (ConnectionError, OSError, AssertionError):
                    reply = "4xx connection lost"  # e.g. the server closed the session
                assert not reply.startswith("5"), f"message {n} bounced: {reply}"
                if reply.startswith("250"):
                    break
                self.deferrals += 1
                _drop(client)
                client = None
                time.sleep(0.2)
            self.accepted += 1
            if self.progress is not None and self.accepted == len(self.numbers) // 3:
                self.progress.wait(60)
        _drop(client)


def _drop(client: LmtpClient | None) -> None:
    if client is not None:
        with contextlib.suppress(OSError):
            client.file.close()
            client.sock.close()


async def test_database_crash_during_load_loses_nothing(
    services: Services, runtime: Any, own_postgres: PostgresServer, fake_llm: FakeLLM
) -> None:
    fake_llm.delay = 0.01  # jobs are in flight when the database goes away
    port = services.settings.lmtp.port
    # Both senders are a third through when the crash comes (the barrier's third party).
    progress = threading.Barrier(3)
    senders = [
        PatientSender(port, range(0, TOTAL // 2), progress),
        PatientSender(port, range(TOTAL // 2, TOTAL), progress),
    ]
    sending = [asyncio.ensure_future(asyncio.to_thread(s.run)) for s in senders]
    await asyncio.to_thread(progress.wait, 60)
    await asyncio.to_thread(own_postgres.kill_and_restart, 1.0)
    await asyncio.gather(*sending)

    accounting = await accounted_for(services, TOTAL, timeout=60)
    assert (accounting.done, accounting.dead) == (TOTAL, 0)
    assert accounting.outcomes == {"replied": TOTAL}
    assert accounting.replies == TOTAL, "one reply per message, none twice"
    assert sum(s.deferrals for s in senders) > 0, "the crash landed while mail was arriving"
