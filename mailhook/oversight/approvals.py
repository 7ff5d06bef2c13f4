"""Held replies: list them for their owner, approve (optionally edited) or reject.

Only the owner decides (DESIGN.md invariant 5). An approved reply is delivered at once through
the same crash-safe delivery as every other send; if the relay is down the reply stays held
and the owner is told to try again, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.billing.notice import BillingNotices
from mailhook.crypto import Sealer
from mailhook.errors import Conflict, NotFound, RelayUnavailable, TemporaryFailure, ValidationFailed
from mailhook.mail.compose import SIGNATURE_SEPARATOR, render_bytes, set_body
from mailhook.outbound.delivery import Delivered, OutgoingDelivery
from mailhook.oversight.sources import API_SOURCES, SANDBOX_SOURCE, job_source
from mailhook.store.activity import ActivityAction, ActivityLog
from mailhook.store.models import (
    Activity,
    Mailbox,
    MailboxStatus,
    OutgoingKind,
    Reply,
    ReplyState,
    User,
    require_id,
)

MAX_EDITED_CHARS = 100_000


@dataclass
class PendingReply:
    """A held reply as its owner sees it (decrypted for them only)."""

    id: int
    mailbox_id: int
    mailbox: str
    recipients: list[str]
    subject: str
    text: str
    reasons: list[str]
    created_at: datetime


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


class Approvals:
    """The approval queue of one installation."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        delivery: OutgoingDelivery,
        activity: ActivityLog,
        *,
        sandbox: OutgoingDelivery | None = None,
        billing: BillingNotices | None = None,
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._delivery = delivery
        self._activity = activity
        self._sandbox = sandbox
        self._billing = billing

    async def _delivery_for(self, source: str | None) -> OutgoingDelivery:
        """The sandbox for mail a test key wrote (it must never leave), else the transport."""
        if source == SANDBOX_SOURCE:
            if self._sandbox is None:
                raise Conflict("test mail can only be released to the sandbox outbox")
            return self._sandbox
        return self._delivery

    async def _held(self, owner: User, reply_id: int | None = None) -> list[tuple[Reply, Mailbox]]:
        query = (
            select(Reply, Mailbox)
            .join(Mailbox, Mailbox.id == Reply.mailbox_id)
            .where(
                Mailbox.owner_id == owner.id,
                # A deleted mailbox's held mail is never sent (its owner closed it).
                Mailbox.status != MailboxStatus.DELETED.value,
                Reply.state == ReplyState.HELD.value,
                Reply.kind == OutgoingKind.REPLY.value,
            )
            .order_by(Reply.id)
        )
        if reply_id is not None:
            query = query.where(Reply.id == require_id(reply_id, "pending reply"))
        async with self._sessions() as session:
            return [(r, m) for r, m in (await session.execute(query)).all()]

    async def _reasons(self, job_id: int) -> list[str]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Activity.reason).where(
                    Activity.job_id == job_id, Activity.action == ActivityAction.QUEUED.value
                )
            )
            return [r for r in rows.all() if r]

    async def _view(self, reply: Reply, mailbox: Mailbox) -> PendingReply:
        message = _parse(self._sealer.open(reply.sealed_message or b""))
        return PendingReply(
            id=reply.id,
            mailbox_id=mailbox.id,
            mailbox=mailbox.address,
            recipients=list(reply.recipients),
            subject=str(message.get("subject", "")),
            text=_body_text(message),
            reasons=await self._reasons(reply.job_id),
            created_at=reply.created_at,
        )

    async def list(self, owner: User) -> list[PendingReply]:
        """Every held reply of the owner's mailboxes, oldest first."""
        return [await self._view(r, m) for r, m in await self._held(owner)]

    async def get(self, owner: User, reply_id: int) -> PendingReply:
        """One held reply; someone else's is a 404."""
        found = await self._held(owner, reply_id)
        if not found:
            raise NotFound("no such pending reply")
        return await self._view(*found[0])

    async def approve(self, owner: User, reply_id: int, edited_text: str | None = None) -> str:
        """Send the held reply (with the owner's edit, if any); returns how delivery ended."""
        found = await self._held(owner, reply_id)
        if not found:
            raise NotFound("no such pending reply")
        reply, mailbox = found[0]
        if edited_text is not None:
            await self._replace_text(reply, edited_text)
        async with self._sessions() as session:
            source = await job_source(session, reply.job_id)
        delivery = await self._delivery_for(source)
        await self._move(reply.id, ReplyState.HELD, ReplyState.PENDING)
        record = await self._delivery.replies.for_job(reply.job_id, OutgoingKind.REPLY)
        assert record is not None
        try:
            result = await delivery.deliver(record, mailbox.id)
        except RelayUnavailable:
            await self._move(reply.id, ReplyState.PENDING, ReplyState.HELD)
            raise TemporaryFailure(
                "the relay is unavailable; the reply is still held, approve again later"
            ) from None
        await self._activity.record(
            mailbox.id,
            ActivityAction.APPROVED,
            job_id=reply.job_id,
            recipient=owner.email,
            reason="edited" if edited_text is not None else "",
        )
        if result in (Delivered.SENT, Delivered.ALREADY_SENT):
            primary = record.recipients[0] if record.recipients else ""
            first_time = await self._activity.record(
                mailbox.id,
                ActivityAction.REPLIED,
                job_id=reply.job_id,
                recipient=primary,
                reason="approved by the owner",
            )
            # A reply the agent wrote costs its credit when it is sent, approved or not; mail
            # a developer's agent sent through the API costs nothing (docs/billing.md). The last
            # credit spent here pauses the mailboxes and mails the owner once, as in the pipeline.
            if first_time and self._billing is not None and source not in API_SOURCES:
                await self._billing.charge(
                    mailbox, owner.email, ActivityAction.REPLIED.value, job_id=reply.job_id
                )
        return result.value

    async def reject(self, owner: User, reply_id: int) -> None:
        """Drop the held reply and erase its text."""
        found = await self._held(owner, reply_id)
        if not found:
            raise NotFound("no such pending reply")
        reply, mailbox = found[0]
        if not await self._delivery.replies.move(
            reply.id, ReplyState.REJECTED, expect=ReplyState.HELD, erase=True
        ):
            raise Conflict("the reply was decided meanwhile")
        await self._activity.record(
            mailbox.id, ActivityAction.REJECTED, job_id=reply.job_id, recipient=owner.email
        )

    async def _move(self, reply_id: int, expect: ReplyState, to: ReplyState) -> None:
        if not await self._delivery.replies.move(reply_id, to, expect=expect):
            raise Conflict("the reply was decided meanwhile")

    async def _replace_text(self, reply: Reply, text: str) -> None:
        if not text.strip() or len(text) > MAX_EDITED_CHARS:
            raise ValidationFailed(f"the edited reply must be 1 to {MAX_EDITED_CHARS:,} characters")
        message = _parse(self._sealer.open(reply.sealed_message or b""))
        # Keep the signature and unsubscribe footer (after the RFC 3676 "-- " separator).
        _, separator, footer = _body_text(message).replace("\r\n", "\n").partition(SIGNATURE_SEPARATOR)
        message.clear_content()
        set_body(message, text.rstrip("\n") + separator + footer, with_html=True)
        sealed = self._sealer.seal(render_bytes(message))
        async with self._sessions() as session, session.begin():
            row = await session.get(Reply, reply.id)
            if row is None or row.state != ReplyState.HELD.value:
                raise Conflict("the reply was decided meanwhile")
            row.sealed_message = sealed
