"""Helpers for integration tests: wait for the spool, read the outbox and the activity log,
serve the API to two users, capture the log."""

from __future__ import annotations

import asyncio
import email
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from mailhook.logs import configure_logging
from mailhook.services import Services
from mailhook.store.models import Activity, JobStatus, Mailbox, OutboxMessage, SpoolJob


async def wait_for_jobs(services: Services, count: int, timeout: float = 20.0) -> list[SpoolJob]:
    """Until ``count`` jobs are finished (done or dead); returns all jobs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with services.sessions() as session:
            jobs = list((await session.scalars(select(SpoolJob).order_by(SpoolJob.id))).all())
        finished = [j for j in jobs if j.status in (JobStatus.DONE.value, JobStatus.DEAD.value)]
        if len(finished) >= count:
            return jobs
        if asyncio.get_running_loop().time() > deadline:
            states = [(j.id, j.status, j.attempts, j.last_error) for j in jobs]
            raise AssertionError(f"only {len(finished)} of {count} jobs finished: {states}")
        await asyncio.sleep(0.05)


async def outbox(services: Services) -> list[EmailMessage]:
    """Replies in the sandbox outbox, decrypted and parsed."""
    async with services.sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    parsed = [
        email.message_from_bytes(services.sealer.open(r.sealed_message), policy=policy.default) for r in rows
    ]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a message (the text/plain part of a multipart reply)."""
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


async def activity(services: Services) -> list[Activity]:
    """The activity log, oldest first."""
    async with services.sessions() as session:
        return list((await session.scalars(select(Activity).order_by(Activity.id))).all())


TokenUser = tuple[int, dict[str, str]]


async def token_users(services: Services, *emails: str) -> list[TokenUser]:
    """Users written straight to the database with an unusable password hash: (id, bearer
    header) for each. argon2 costs ~0.5 s a user, and these tests authenticate with tokens."""
    from mailhook.api.auth import issue_token
    from mailhook.store.models import User

    users = [User(email=email, password_hash="!") for email in emails]
    async with services.sessions() as session, session.begin():
        session.add_all(users)
    secret = services.settings.security.jwt_secret
    return [(user.id, {"Authorization": f"Bearer {issue_token(user.id, secret)}"}) for user in users]


@asynccontextmanager
async def two_user_api(
    services: Services, app: Any = None
) -> AsyncIterator[tuple[httpx.AsyncClient, TokenUser, TokenUser]]:
    """The app (``create_app(services)`` unless given) under real uvicorn on the settings' HTTP
    port, an httpx client on it, and two users: owner@example.com and other@example.com, each
    as (id, bearer header), for tenant-isolation checks."""
    from mailhook.app import create_app
    from tests.http import serve_http

    owner, other = await token_users(services, "owner@example.com", "other@example.com")
    async with (
        serve_http(app or create_app(services, migrate=False), services.settings.http.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield http, owner, other


@dataclass
class TwoUserApi:
    """What :func:`two_user_api` serves: the client, the services, and the two users' bearer
    headers. Test modules extend it with the calls they make."""

    http: httpx.AsyncClient
    services: Services
    owner: dict[str, str]
    other: dict[str, str]

    async def create(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """``POST /api/v1/mailboxes`` as the owner (or ``headers``); asserts 201."""
        response = await self.http.post("/api/v1/mailboxes", json=body, headers=headers or self.owner)
        assert response.status_code == 201, response.text
        return dict(response.json())


async def mailbox_row(services: Services, mailbox_id: int) -> Mailbox:
    """A mailbox as stored."""
    async with services.sessions() as session:
        row = await session.get(Mailbox, mailbox_id)
    assert row is not None
    return row


@contextmanager
def captured_log(level: str = "DEBUG") -> Iterator[io.StringIO]:
    """The JSON log lines written inside the block (INFO to stderr again afterwards)."""
    stream = io.StringIO()
    configure_logging(level, json=True, stream=stream)
    try:
        yield stream
    finally:
        configure_logging("INFO", json=True)
