"""The agent inbox: mail of ``answered_by = api`` mailboxes, waiting for the developer's agent.

A pipeline step after the threat step (:class:`AgentInboxStep`) keeps the message here instead of
calling the model, sealed with Fernet: what the agent reads (headers, the guard's sanitised
text and subject) in one token, the raw message (to reply: recipients and threading come from
it) in another, opened only to reply. Only metadata is in clear: the threat score and rule ids,
the size, and SHA-256 fingerprints of the thread's Message-IDs (to find a thread without opening
every item). Items are purged after ``agent.api_inbox_retention_days``
(on access, and by :class:`InboxSweeper`), with their mailbox, and by erasure (cascade).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from mailhook.crypto import Sealer
from mailhook.errors import NotFound
from mailhook.logs import get_logger
from mailhook.mail.parse import ParsedMessage, parse_message
from mailhook.mail.thread import thread_ids
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.settings import Settings
from mailhook.spool.spool import message_id_hash
from mailhook.store.activity import ActivityAction
from mailhook.store.models import AgentInboxItem, AgentSend, Mailbox, MailboxStatus, require_id, utcnow

log = get_logger(__name__)

ANSWERED_BY_API = "api"
MAX_LISTED = 100
PURGE_ON_ACCESS_EVERY = 60.0


@dataclass
class AttachmentInfo:
    """An attachment's name, type and size (its bytes stay sealed)."""

    filename: str
    content_type: str
    size: int


@dataclass
class InboxSummary:
    """A waiting message in a listing."""

    id: int
    from_addr: str
    subject: str
    date: datetime | None
    received_at: datetime
    threat_score: int
    size: int
    answered: bool


@dataclass
class InboxMessage:
    """A waiting message to read: headers, the sanitised text, the threat verdict."""

    id: int
    message_id: str | None
    from_addr: str
    from_name: str
    reply_to: list[str]
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    text: str
    threat_score: int
    threat_rules: list[str]
    attachments: list[AttachmentInfo]
    received_at: datetime


def _fingerprints(message: ParsedMessage) -> list[str]:
    return [h for h in (message_id_hash(i) for i in thread_ids(message)) if h]


def _view(message: ParsedMessage) -> dict[str, object]:
    """What the agent may read of a (sanitised) message, as JSON to seal."""
    return {
        "message_id": message.message_id,
        "from_addr": message.from_addr,
        "from_name": message.from_name,
        "reply_to": list(message.reply_to),
        "to": list(message.to),
        "cc": list(message.cc),
        "subject": message.subject,
        "date": message.date.isoformat() if message.date else None,
        "text": message.text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments
        ],
    }


def _date(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class AgentInbox:
    """Store, list, read and purge items of one installation."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._retention = timedelta(days=settings.agent.api_inbox_retention_days)
        self._last_purge = 0.0

    async def store(self, ctx: MessageContext, sanitized: ParsedMessage) -> None:
        """Keep the job's message for the agent (a retried job stores it once)."""
        now = utcnow()
        score, rules = ctx.threat.get("score"), ctx.threat.get("rules")
        item = AgentInboxItem(
            mailbox_id=ctx.job.mailbox_id,
            job_id=ctx.job.id,
            message_id_hash=ctx.job.message_id_hash,
            thread_hashes=_fingerprints(sanitized),
            threat_score=score if isinstance(score, int) else 0,
            threat_rules=[str(r) for r in rules] if isinstance(rules, list) else [],
            size=len(ctx.job.raw),
            sealed=self._sealer.seal(json.dumps(_view(sanitized)).encode()),
            sealed_raw=self._sealer.seal(ctx.job.raw),
            received_at=now,
            expires_at=now + self._retention,
        )
        with contextlib.suppress(IntegrityError):  # stored by an earlier attempt of this job
            async with self._sessions() as session, session.begin():
                session.add(item)

    def _open(self, item: AgentInboxItem) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self._sealer.open(item.sealed))
        return view

    async def _purge_now_and_then(self) -> None:
        # On access, but at most once a minute per process: each purge takes the write lock.
        now = time.monotonic()
        if now - self._last_purge >= PURGE_ON_ACCESS_EVERY:
            self._last_purge = now
            await self.purge_expired()

    async def _items(self, mailbox_id: int) -> list[AgentInboxItem]:
        await self._purge_now_and_then()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AgentInboxItem)
                .options(defer(AgentInboxItem.sealed_raw))
                .where(AgentInboxItem.mailbox_id == mailbox_id, AgentInboxItem.expires_at >= utcnow())
                .order_by(AgentInboxItem.received_at.desc(), AgentInboxItem.id.desc())
            )
            return list(rows.all())

    async def _item(self, mailbox_id: int, item_id: int) -> AgentInboxItem:
        require_id(item_id, "message")
        await self._purge_now_and_then()
        async with self._sessions() as session:
            item = await session.scalar(
                select(AgentInboxItem)
                .options(defer(AgentInboxItem.sealed_raw))
                .where(
                    AgentInboxItem.id == item_id,
                    AgentInboxItem.mailbox_id == mailbox_id,
                    AgentInboxItem.expires_at >= utcnow(),
                )
            )
        if item is None:
            raise NotFound("no such message")
        return item

    async def waiting(self, mailbox_id: int, *, limit: int = MAX_LISTED) -> list[InboxSummary]:
        """The newest waiting messages, newest first."""
        items = (await self._items(mailbox_id))[:limit]
        async with self._sessions() as session:
            answered = set(
                (
                    await session.scalars(
                        select(AgentSend.inbox_item_id).where(
                            AgentSend.mailbox_id == mailbox_id,
                            AgentSend.inbox_item_id.in_([i.id for i in items]),
                        )
                    )
                ).all()
            )
        summaries = []
        for item in items:
            view = self._open(item)
            summaries.append(
                InboxSummary(
                    id=item.id,
                    from_addr=str(view["from_addr"]),
                    subject=str(view["subject"]),
                    date=_date(view["date"]),
                    received_at=item.received_at,
                    threat_score=item.threat_score,
                    size=item.size,
                    answered=item.id in answered,
                )
            )
        return summaries

    def _message(self, item: AgentInboxItem) -> InboxMessage:
        view = self._open(item)
        return InboxMessage(
            id=item.id,
            message_id=view["message_id"],
            from_addr=view["from_addr"],
            from_name=view["from_name"],
            reply_to=view["reply_to"],
            to=view["to"],
            cc=view["cc"],
            subject=view["subject"],
            date=_date(view["date"]),
            text=view["text"],
            threat_score=item.threat_score,
            threat_rules=list(item.threat_rules),
            attachments=[AttachmentInfo(**a) for a in view["attachments"]],
            received_at=item.received_at,
        )

    async def read(self, mailbox_id: int, item_id: int) -> InboxMessage:
        """One message of this mailbox; another mailbox's id is a 404."""
        return self._message(await self._item(mailbox_id, item_id))

    async def parent(self, mailbox_id: int, item_id: int) -> ParsedMessage:
        """The parsed original, for composing a reply (its recipients and threading)."""
        item = await self._item(mailbox_id, item_id)
        async with self._sessions() as session:
            sealed_raw = await session.scalar(
                select(AgentInboxItem.sealed_raw).where(AgentInboxItem.id == item.id)
            )
        if sealed_raw is None:
            raise NotFound("no such message")
        return parse_message(self._sealer.open(sealed_raw))

    async def thread(self, mailbox_id: int, item_id: int) -> list[InboxMessage]:
        """The waiting messages that share a Message-ID reference with this one, oldest first."""
        target = await self._item(mailbox_id, item_id)
        wanted = set(target.thread_hashes)
        items = [
            i for i in await self._items(mailbox_id) if i.id == target.id or wanted & set(i.thread_hashes)
        ]
        return [self._message(i) for i in reversed(items)]

    async def purge_expired(self) -> int:
        """Delete expired items and those of deleted mailboxes; returns how many went."""
        deleted_mailboxes = select(Mailbox.id).where(Mailbox.status == MailboxStatus.DELETED.value)
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(AgentInboxItem).where(
                    (AgentInboxItem.expires_at < utcnow()) | AgentInboxItem.mailbox_id.in_(deleted_mailboxes)
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)


class AgentInboxStep:
    """Pipeline step after ``threat``: hand mail of ``answered_by = api`` mailboxes to their agent."""

    name = "agent_inbox"

    def __init__(self, inbox: AgentInbox) -> None:
        self._inbox = inbox

    async def process(self, ctx: MessageContext) -> None:
        """No-op for mailboxes the built-in model answers; otherwise store and stop."""
        if ctx.need_mailbox().answered_by != ANSWERED_BY_API:
            return
        await self._inbox.store(ctx, ctx.need_message())
        raise Stop(ActivityAction.HANDED_TO_AGENT, "waiting for the mailbox's own agent (API)")


class InboxSweeper:
    """Purges expired agent-inbox items every ``interval`` seconds while the app runs."""

    def __init__(self, inbox: AgentInbox, interval: float = 3600.0) -> None:
        self._inbox = inbox
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                purged = await self._inbox.purge_expired()
                if purged:
                    log.info("agent_inbox_purged", items=purged)
            except Exception as exc:  # the database may be down; try again next round
                log.warning("agent_inbox_purge_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        """Stop sweeping."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
