"""The agent primitives, one service for REST and MCP: both transports call these methods only.

Every method acts for one :class:`~mailhook.agentapi.keys.Principal` (a key and its mailbox) and
writes one audit entry (:mod:`mailhook.agentapi.audit`), whatever the outcome. Another mailbox's
message or pending id is a 404, exactly like an id that does not exist. The HTTP transports let a
key in through :meth:`AgentPrimitives.admit`, which counts the request against the key's limit;
the sending primitives count against its send limit (:mod:`mailhook.agentapi.limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.agentapi.audit import AuditTrail
from mailhook.agentapi.compose import (
    AttachmentIn,
    Envelope,
    clean_addresses,
    compose_agent_reply,
    compose_new,
)
from mailhook.agentapi.inbox import AgentInbox, InboxMessage, InboxSummary
from mailhook.agentapi.keys import AgentKeys, Principal, Scope
from mailhook.agentapi.limits import KeyLimits
from mailhook.agentapi.outgoing import AgentOutbox, SendResult
from mailhook.errors import Forbidden, NotFound, ValidationFailed
from mailhook.oversight.approvals import Approvals
from mailhook.oversight.sources import SANDBOX_SOURCE, job_source
from mailhook.store.models import (
    AgentSend,
    Mailbox,
    OutgoingKind,
    Reply,
    ReplyState,
    User,
    require_id,
)
from mailhook.store.suppressions import UnsubscribeLinks


@dataclass
class NewMail:
    """``send_email``: a new message."""

    to: Sequence[str]
    subject: str
    text: str
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    html: str | None = None
    attachments: Sequence[AttachmentIn] = ()


@dataclass
class PendingItem:
    """A held message of the key's mailbox, as metadata."""

    id: int
    subject: str
    recipients: list[str]
    reasons: list[str]
    created_at: datetime
    by_this_key: bool


@dataclass
class Decision:
    """How ``decide_email`` ended."""

    id: int
    decision: str
    result: str


class AgentPrimitives:
    """check_inbox, read_email, get_thread, send_email, reply_email, draft_reply, list_pending,
    decide_email."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: AgentKeys,
        audit: AuditTrail,
        inbox: AgentInbox,
        outbox: AgentOutbox,
        approvals: Approvals,
        links: UnsubscribeLinks,
        limits: KeyLimits,
    ) -> None:
        self._sessions = sessions
        self.keys = keys
        self.audit = audit
        self.inbox = inbox
        self._outbox = outbox
        self._approvals = approvals
        self._links = links
        self.limits = limits

    async def admit(self, token: str) -> Principal:
        """The key behind an HTTP request, counted against its request limit (REST and MCP)."""
        principal = await self.keys.authenticate(token)
        self.limits.request(principal)
        return principal

    async def _mailbox(self, principal: Principal) -> tuple[Mailbox, User]:
        async with self._sessions() as session:
            mailbox = await session.get(Mailbox, principal.mailbox_id)
            owner = await session.get(User, principal.owner_id)
        if mailbox is None or owner is None:
            raise NotFound("no such mailbox")
        return mailbox, owner

    async def check_inbox(self, principal: Principal, channel: str) -> list[InboxSummary]:
        """Messages waiting for the agent, newest first (metadata)."""
        async with self.audit.action(principal, channel, "check_inbox"):
            return await self.inbox.waiting(principal.mailbox_id)

    async def read_email(self, principal: Principal, channel: str, message_id: int) -> InboxMessage:
        """One waiting message: headers, the sanitised text, its threat score and rules."""
        async with self.audit.action(principal, channel, "read_email", message_id):
            return await self.inbox.read(principal.mailbox_id, message_id)

    async def get_thread(self, principal: Principal, channel: str, message_id: int) -> list[InboxMessage]:
        """The waiting messages of the same conversation, oldest first."""
        async with self.audit.action(principal, channel, "get_thread", message_id):
            return await self.inbox.thread(principal.mailbox_id, message_id)

    async def send_email(self, principal: Principal, channel: str, mail: NewMail) -> SendResult:
        """A new message, past the outbound guard and the key's trust."""
        async with self.audit.action(principal, channel, "send_email") as outcome:
            self.limits.send(principal)
            envelope = Envelope(
                to=clean_addresses("to", mail.to),
                cc=clean_addresses("cc", mail.cc),
                bcc=clean_addresses("bcc", mail.bcc),
                given=tuple(str(a) for a in (*mail.to, *mail.cc, *mail.bcc)),
            )
            mailbox, owner = await self._mailbox(principal)
            first = envelope.all[0] if envelope.all else ""
            draft = compose_new(
                mailbox,
                envelope,
                subject=mail.subject,
                text=mail.text,
                html=mail.html,
                attachments=mail.attachments,
                unsubscribe_url=self._links.url(first),
            )
            result = await self._outbox.submit(principal, mailbox, owner.email, draft)
            outcome.value, outcome.target_id = result.status, result.id
            return result

    async def _answer(
        self, principal: Principal, channel: str, action: str, message_id: int, text: str, reply_all: bool
    ) -> SendResult:
        async with self.audit.action(principal, channel, action, message_id) as outcome:
            if action == "reply_email":  # a draft is not sent: only the owner can send it
                self.limits.send(principal)
            parent = await self.inbox.parent(principal.mailbox_id, message_id)
            mailbox, owner = await self._mailbox(principal)
            if not text.strip():
                raise ValidationFailed("text must not be empty")
            draft = compose_agent_reply(
                parent,
                mailbox,
                text=text,
                reply_all=reply_all,
                unsubscribe_url_for=self._links.url,
                inbox_item_id=message_id,
            )
            as_draft = action == "draft_reply"
            result = await self._outbox.submit(principal, mailbox, owner.email, draft, as_draft=as_draft)
            outcome.value = result.status
            return result

    async def reply_email(
        self, principal: Principal, channel: str, message_id: int, text: str, *, reply_all: bool = False
    ) -> SendResult:
        """Answer a waiting message; recipients and threading come from the original."""
        return await self._answer(principal, channel, "reply_email", message_id, text, reply_all)

    async def draft_reply(
        self, principal: Principal, channel: str, message_id: int, text: str, *, reply_all: bool = False
    ) -> SendResult:
        """Like ``reply_email``, but kept in the owner's approval queue: nothing is sent."""
        return await self._answer(principal, channel, "draft_reply", message_id, text, reply_all)

    async def list_pending(self, principal: Principal, channel: str) -> list[PendingItem]:
        """Held messages of this mailbox, oldest first."""
        async with self.audit.action(principal, channel, "list_pending"):
            _, owner = await self._mailbox(principal)
            held = [p for p in await self._approvals.list(owner) if p.mailbox_id == principal.mailbox_id]
            async with self._sessions() as session:
                mine = set(
                    (
                        await session.scalars(
                            select(Reply.id)
                            .join(AgentSend, AgentSend.job_id == Reply.job_id)
                            .where(
                                AgentSend.key_id == principal.key_id, Reply.mailbox_id == principal.mailbox_id
                            )
                        )
                    ).all()
                )
            return [
                PendingItem(p.id, p.subject, p.recipients, p.reasons, p.created_at, p.id in mine)
                for p in held
            ]

    async def decide_email(
        self,
        principal: Principal,
        channel: str,
        pending_id: int,
        decision: Literal["approve", "reject"],
        text: str | None = None,
    ) -> Decision:
        """Approve (optionally edited) or reject a held message: owner-scope keys only, and
        never a message the same key wrote."""
        async with self.audit.action(principal, channel, "decide_email", pending_id) as outcome:
            if principal.scope is not Scope.OWNER:
                raise Forbidden("this key has scope 'agent': only an owner-scope key may decide")
            if decision not in ("approve", "reject"):
                raise ValidationFailed("decision must be approve or reject")
            await self._check_decidable(principal, pending_id)
            _, owner = await self._mailbox(principal)
            if decision == "approve":
                result = await self._approvals.approve(owner, pending_id, text)
            else:
                await self._approvals.reject(owner, pending_id)
                result = "rejected"
            outcome.value = f"{decision}d: {result}"[:64]
            return Decision(pending_id, decision, result)

    async def _check_decidable(self, principal: Principal, pending_id: int) -> None:
        require_id(pending_id, "pending message")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Reply.job_id, AgentSend.key_id)
                    .outerjoin(AgentSend, AgentSend.job_id == Reply.job_id)
                    .where(
                        Reply.id == pending_id,
                        Reply.mailbox_id == principal.mailbox_id,
                        Reply.state == ReplyState.HELD.value,
                        Reply.kind == OutgoingKind.REPLY.value,
                    )
                )
            ).first()
            if found is None:
                raise NotFound("no such pending message")
            job_id, creator = found
            source = await job_source(session, job_id)
        if creator is not None and creator == principal.key_id:
            raise Forbidden("a key cannot decide a message it wrote itself")
        if principal.test and source != SANDBOX_SOURCE:
            raise Forbidden("a test key cannot release live mail")
