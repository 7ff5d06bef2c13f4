"""Replies through a real SMTP relay: down, deferring, rejecting; exactly one copy arrives."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.models import JobStatus, Reply, ReplyState, SpoolJob
from tests.certs import self_signed
from tests.fakes.relay import RelaySink
from tests.harness.ports import free_port
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, wait_for_jobs

RELAY_PORT = free_port()
SMTP_OUT = {
    "MAILHOOK_OUTBOUND_MODE": "smtp",
    "MAILHOOK_OUTBOUND_RELAY_HOST": "127.0.0.1",
    "MAILHOOK_OUTBOUND_RELAY_PORT": str(RELAY_PORT),
    "MAILHOOK_OUTBOUND_TIMEOUT_SECONDS": "5",
}
TLS_RELAY_PORT = free_port()


@pytest.fixture
def relay() -> Iterator[RelaySink]:
    sink = RelaySink(RELAY_PORT)
    try:
        yield sink
    finally:
        sink.stop()


async def send(services: Services) -> None:
    result = await asyncio.to_thread(
        lmtp_send, services.settings.lmtp.port, "alice@example.org", ["bot@agents.test"], make_message()
    )
    assert result.data["bot@agents.test"].startswith("250")


async def job_state(services: Services) -> tuple[str, int, str]:
    async with services.sessions() as session:
        job = await session.scalar(select(SpoolJob))
        reply = await session.scalar(select(Reply))
    assert job is not None
    return job.status, job.attempts, reply.state if reply else ""


@pytest.mark.parametrize("extra_env", [SMTP_OUT])
async def test_relay_down_then_back(services: Services, runtime: Any, relay: RelaySink) -> None:
    await send(services)
    for _ in range(200):
        status, attempts, reply_state = await job_state(services)
        if attempts >= 2 and status == JobStatus.QUEUED.value:
            break  # between two attempts, waiting out its backoff
        await asyncio.sleep(0.05)
    assert attempts >= 2
    assert status == JobStatus.QUEUED.value
    assert reply_state == ReplyState.PENDING.value, "a refused connection means: not sent, try again"
    relay.start()
    await wait_for_jobs(services, 1)
    await asyncio.sleep(0.3)
    [(sender, rcpts, message)] = relay.messages
    assert sender == "bot@agents.test" and rcpts == ["alice@example.org"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert (await job_state(services))[2] == ReplyState.SENT.value
    assert [r.action for r in await activity(services)] == ["replied"]


@pytest.mark.parametrize("extra_env", [SMTP_OUT])
async def test_relay_defers_then_accepts(services: Services, runtime: Any, relay: RelaySink) -> None:
    relay.mode = "defer"
    relay.start()
    await send(services)
    for _ in range(200):
        if (await job_state(services))[1] >= 2:
            break
        await asyncio.sleep(0.05)
    relay.mode = "accept"
    await wait_for_jobs(services, 1)
    await asyncio.sleep(0.3)
    assert len(relay.messages) == 1


@pytest.mark.parametrize("extra_env", [SMTP_OUT])
async def test_relay_rejects_permanently(services: Services, runtime: Any, relay: RelaySink) -> None:
    relay.mode = "reject"
    relay.start()
    await send(services)
    [job] = await wait_for_jobs(services, 1)
    assert job.status == JobStatus.DONE.value and job.attempts == 1, "a 5xx is not retried"
    assert (await job_state(services))[2] == ReplyState.FAILED.value
    [row] = await activity(services)
    assert row.action == "error" and "rejected by the relay" in row.reason
    assert relay.messages == []


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[RelaySink, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = RelaySink(TLS_RELAY_PORT, tls=context, credentials=("mailhook", "relay secret 1")).start()
    try:
        yield sink, cert
    finally:
        sink.stop()


@pytest.mark.parametrize(
    "extra_env",
    [
        {
            **SMTP_OUT,
            "MAILHOOK_OUTBOUND_RELAY_PORT": str(TLS_RELAY_PORT),
            "MAILHOOK_OUTBOUND_RELAY_STARTTLS": "true",
            "MAILHOOK_OUTBOUND_RELAY_USERNAME": "mailhook",
            "MAILHOOK_OUTBOUND_RELAY_PASSWORD": "relay secret 1",
        }
    ],
)
async def test_starttls_and_auth_with_the_relay(
    make_settings: Any, services: Services, tls_relay: tuple[RelaySink, Path], extra_env: dict[str, str]
) -> None:
    from mailhook.app import Runtime
    from mailhook.services import build_services
    from mailhook.store.accounts import Accounts

    sink, cert = tls_relay
    # The relay's self-signed certificate is trusted through the CA file setting only.
    settings = dataclasses.replace(
        services.settings,
        outbound=dataclasses.replace(services.settings.outbound, relay_ca_file=str(cert)),
    )
    trusted = build_services(settings)
    accounts = Accounts(trusted.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    await accounts.add_mailbox("owner@example.com", "bot@agents.test")
    running = Runtime(trusted, migrate=False)
    await running.start()
    try:
        await send(trusted)
        await wait_for_jobs(trusted, 1)
    finally:
        await running.stop()
    assert sink.logins == ["mailhook"]
    assert len(sink.messages) == 1
