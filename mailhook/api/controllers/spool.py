"""Spool visibility: the sandbox outbox (owners) and dead-lettered jobs (admins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from mailhook.api.auth import current_user, require_admin
from mailhook.errors import NotFound
from mailhook.mail.parse import parse_message
from mailhook.services import Services
from mailhook.store.models import Mailbox, OutboxMessage, User, require_id


@dataclass
class OutboxItem:
    """A reply held in the sandbox outbox (metadata)."""

    id: int
    mailbox_id: int
    message_id: str
    recipients: list[str]
    created_at: datetime


@dataclass
class OutboxMessageBody(OutboxItem):
    """One outbox reply with its full RFC 5322 text (decrypted for its owner only), and what a
    reader sees of it: subject, To and Cc, and the decoded plain text."""

    message: str
    subject: str
    to: list[str]
    cc: list[str]
    text: str


@dataclass
class DeadLetter:
    """A job that failed every attempt (metadata only)."""

    id: int
    mailbox_id: int
    source: str
    attempts: int
    last_error: str
    created_at: datetime


def _item(row: OutboxMessage) -> OutboxItem:
    return OutboxItem(row.id, row.mailbox_id, row.message_id, list(row.recipients), row.created_at)


class SpoolController(Controller):
    """``/api/v1/outbox`` and ``/api/v1/dead-letters``."""

    path = "/api/v1"
    dependencies = {"user": Provide(current_user)}

    @get("/outbox")
    async def list_outbox(
        self, state: State, user: NamedDependency[User], limit: FromQuery[int] = 50
    ) -> list[OutboxItem]:
        """Newest first; only replies of the caller's mailboxes."""
        services: Services = state.services
        query = (
            select(OutboxMessage)
            .join(Mailbox, Mailbox.id == OutboxMessage.mailbox_id)
            .where(Mailbox.owner_id == user.id)
            .order_by(OutboxMessage.id.desc())
            .limit(max(1, min(limit, 200)))
        )
        async with services.sessions() as session:
            return [_item(row) for row in (await session.scalars(query)).all()]

    @get("/outbox/{item_id:int}")
    async def get_outbox(
        self, state: State, user: NamedDependency[User], item_id: FromPath[int]
    ) -> OutboxMessageBody:
        """One reply; another user's item is a 404, not a 403 (no existence leak)."""
        services: Services = state.services
        query = (
            select(OutboxMessage)
            .join(Mailbox, Mailbox.id == OutboxMessage.mailbox_id)
            .where(OutboxMessage.id == require_id(item_id, "outbox message"), Mailbox.owner_id == user.id)
        )
        async with services.sessions() as session:
            row = await session.scalar(query)
        if row is None:
            raise NotFound("no such outbox message")
        raw = services.sealer.open(row.sealed_message)
        parsed = parse_message(raw)  # our own composed reply: it always has a header section
        return OutboxMessageBody(
            **vars(_item(row)),
            message=raw.decode("utf-8", "replace"),
            subject=parsed.subject,
            to=list(parsed.to),
            cc=list(parsed.cc),
            text=parsed.text,
        )

    @get("/dead-letters")
    async def list_dead(self, state: State, user: NamedDependency[User]) -> list[DeadLetter]:
        """Dead-lettered jobs (admins)."""
        require_admin(user)
        services: Services = state.services
        return [
            DeadLetter(j.id, j.mailbox_id, j.source, j.attempts, j.last_error, j.created_at)
            for j in await services.spool.dead_letters()
        ]

    @post("/dead-letters/{job_id:int}/retry", status_code=202)
    async def retry_dead(
        self, state: State, user: NamedDependency[User], job_id: FromPath[int]
    ) -> dict[str, int]:
        """Queue a dead-lettered job again (admins)."""
        require_admin(user)
        services: Services = state.services
        if not await services.spool.requeue(require_id(job_id, "dead-lettered job")):
            raise NotFound("no such dead-lettered job")
        return {"queued": job_id}
