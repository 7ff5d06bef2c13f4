"""Approval by mail, both halves.

* :class:`ApprovalNoticeStep` (after-step): a reply was held, so mail the owner the reply,
  why it was held, and a signed Reply-To address to answer with one word.
* :class:`ApprovalReplyStep` (step 3): mail arriving at such a signed address is the owner's
  answer, never a customer message: approve or reject the held reply, and stop.
"""

from __future__ import annotations

import hmac

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import MailhookError
from mailhook.logs import get_logger
from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import make_message_id, render_bytes
from mailhook.mail.notices import compose_approval_notice
from mailhook.outbound.delivery import OutgoingDelivery
from mailhook.oversight.approvals import Approvals
from mailhook.oversight.mail_approval import ApprovalTokens, decision_word
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, ReplyState, User, utcnow
from mailhook.store.replies import NewOutgoing

log = get_logger(__name__)


class ApprovalNoticeStep:
    """Tell the owner a reply waits for them (no-op for other outcomes)."""

    name = "approval_notice"

    def __init__(
        self, delivery: OutgoingDelivery, tokens: ApprovalTokens, secret: str, public_url: str
    ) -> None:
        self._delivery = delivery
        self._tokens = tokens
        self._secret = secret.encode()
        self._review_url = public_url.rstrip("/") + "/pending"

    async def process(self, ctx: MessageContext) -> None:
        """Compose once and deliver the notice for a held reply."""
        if ctx.outcome is None or ctx.outcome.action is not ActivityAction.QUEUED or ctx.mailbox is None:
            return
        replies = self._delivery.replies
        held = await replies.for_job(ctx.job.id, OutgoingKind.REPLY)
        if held is None or held.state is not ReplyState.HELD or held.data is None:
            return
        notice = await replies.for_job(ctx.job.id, OutgoingKind.APPROVAL_NOTICE)
        if notice is None:
            notice = await replies.prepare(self._compose(ctx, held.id, held.data))
        try:
            result = await self._delivery.deliver(notice, ctx.mailbox.id)
        except MailhookError as exc:  # the reply is safely held; the API still shows it
            log.warning("approval_notice_failed", error=type(exc).__name__)
            return
        ctx.outcome.detail["owner_notified"] = result.value

    def _compose(self, ctx: MessageContext, reply_id: int, held: bytes) -> NewOutgoing:
        mailbox = ctx.need_mailbox()
        seed = hmac.digest(self._secret, f"approval:{ctx.job.id}".encode(), "sha256")
        message_id = make_message_id(seed, domain_of(mailbox.address))
        reasons = [ctx.outcome.reason] if ctx.outcome and ctx.outcome.reason else []
        notice = compose_approval_notice(
            owner=ctx.owner_email,
            mailbox_address=mailbox.address,
            reply_to=self._tokens.reply_address(mailbox.address, reply_id),
            held_reply=held,
            reasons=reasons,
            review_url=self._review_url,
            message_id=message_id,
            date=utcnow(),
        )
        return NewOutgoing(
            job_id=ctx.job.id,
            mailbox_id=mailbox.id,
            kind=OutgoingKind.APPROVAL_NOTICE,
            message_id=message_id,
            envelope_sender=mailbox.address,
            recipients=(ctx.owner_email,),
            data=render_bytes(notice),
        )


class ApprovalReplyStep:
    """The owner's one-word answer to an approval notice."""

    name = "approval_reply"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], approvals: Approvals, tokens: ApprovalTokens
    ) -> None:
        self._sessions = sessions
        self._approvals = approvals
        self._tokens = tokens

    async def process(self, ctx: MessageContext) -> None:
        """Do nothing for ordinary mail; otherwise decide and stop."""
        try:
            reply_id = self._tokens.reply_id(ctx.job.recipient)
        except ValueError:
            raise Stop(ActivityAction.SKIPPED, "approval address with a bad signature") from None
        if reply_id is None:
            return
        message, mailbox = ctx.need_message(), ctx.need_mailbox()
        if message.from_addr != ctx.owner_email:
            # A valid token alone is not enough: it must also come from the owner.
            raise Stop(ActivityAction.SKIPPED, "approval answer not from the owner")
        word = decision_word(message.text)
        if word is None:
            raise Stop(ActivityAction.SKIPPED, "approval answer without approve or reject")
        async with self._sessions() as session:
            owner = await session.get(User, mailbox.owner_id)
        assert owner is not None
        try:
            if word == "approve":
                result = await self._approvals.approve(owner, reply_id)
            else:
                await self._approvals.reject(owner, reply_id)
                result = "rejected"
        except MailhookError as exc:
            raise Stop(ActivityAction.SKIPPED, f"approval by mail failed: {exc}") from None
        raise Stop(ActivityAction.SKIPPED, f"owner answered {word} by mail", result=result)
