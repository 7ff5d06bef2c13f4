"""Fixtures of the IMAP tests: a private Dovecot with test users, short intervals, an external
mailbox pointing at it, and a way to run an IMAP door on its own."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailhook.doors.imap import ImapDoor
from mailhook.services import Services
from mailhook.store.models import Mailbox, SpoolJob, User
from tests.fakes.relay import RelaySink
from tests.harness.dovecot import DovecotServer

ADDRESS = "help@example.org"
PASSWORD = "app-password-1"


@pytest.fixture
def dovecot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DovecotServer]:
    """A private Dovecot with the test account; IDLE on unless parametrized with False."""
    reason = DovecotServer.unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = DovecotServer(tmp_path, {ADDRESS: PASSWORD}, idle=getattr(request, "param", True))
    with server:
        yield server


@pytest.fixture
def account_smtp(dovecot: DovecotServer) -> Iterator[RelaySink]:
    """The provider's submission server: STARTTLS (cert trusted via imap.ca_file) and AUTH."""
    sink = RelaySink.submission(dovecot.cert, dovecot.key, (ADDRESS, PASSWORD))
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def extra_env(dovecot: DovecotServer) -> dict[str, str]:
    """Seconds instead of minutes (leases, IDLE renewal, poll unit, backoff); loopback allowed."""
    return {
        "MAILHOOK_IMAP_LEASE_SECONDS": "1.5",
        "MAILHOOK_IMAP_IDLE_RENEW_SECONDS": "5",
        "MAILHOOK_IMAP_POLL_UNIT_SECONDS": "0.5",
        "MAILHOOK_IMAP_BACKOFF_SECONDS": "0.2",
        "MAILHOOK_IMAP_BACKOFF_MAX_SECONDS": "1",
        "MAILHOOK_IMAP_TIMEOUT_SECONDS": "5",
        "MAILHOOK_IMAP_CA_FILE": str(dovecot.cert),
        # The test servers are on loopback, which external mailboxes may not reach by default.
        "MAILHOOK_IMAP_ALLOW_HOSTS": "127.0.0.1",
        "MAILHOOK_LMTP_ENABLED": "false",
    }


async def add_external(
    services: Services,
    dovecot: DovecotServer,
    *,
    password: str = PASSWORD,
    poll_interval_minutes: int = 0,
    smtp_port: int = 465,
    mode: str = "autonomous",
    owner: str = "owner@example.com",
    imap_host: str = "127.0.0.1",
    smtp_host: str = "127.0.0.1",
) -> int:
    """An external mailbox on the private Dovecot (reached as ``imap_host``); returns its id."""
    async with services.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == owner))
        if user is None:
            user = User(email=owner, password_hash="!")
            session.add(user)
            await session.flush()
        mailbox = Mailbox(
            owner_id=user.id,
            kind="external",
            address=ADDRESS,
            imap_host=imap_host,
            imap_port=dovecot.port,
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            login=ADDRESS,
            password_sealed=services.sealer.seal(password.encode()),
            poll_interval_minutes=poll_interval_minutes,
            mode=mode,
        )
        session.add(mailbox)
    return mailbox.id


def make_message(subject: str = "Opening hours?", sender: str = "alice@customer.test") -> EmailMessage:
    """A plain customer question with a unique Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="customer.test")
    message.set_content("Hello, when are you open on Saturday?\n")
    return message


def make_mail(subject: str = "Opening hours?", sender: str = "alice@customer.test", **headers: str) -> bytes:
    """A plain customer question with a unique Message-ID, as bytes (``Return_Path=`` adds one)."""
    message = make_message(subject, sender)
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message.as_bytes()


async def spooled(services: Services) -> list[SpoolJob]:
    """Every spool job, oldest first."""
    async with services.sessions() as session:
        return list((await session.scalars(select(SpoolJob).order_by(SpoolJob.id))).all())


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def door_factory(services: Services) -> AsyncIterator[Callable[..., Awaitable[ImapDoor]]]:
    """Start IMAP doors on their own (no workers); each may get its own node name."""
    doors: list[ImapDoor] = []

    async def start(node: str = "test-node", max_message_bytes: int | None = None, **imap: Any) -> ImapDoor:
        door = ImapDoor(
            services.sessions,
            services.sealer,
            services.spool,
            dataclasses.replace(services.settings.imap, **imap),
            max_message_bytes=max_message_bytes or services.settings.lmtp.max_message_bytes,
            node=node,
        )
        await door.start()
        doors.append(door)
        return door

    yield start
    for door in doors:
        await door.stop()
