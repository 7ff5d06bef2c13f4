"""Approval by mail, both halves.

* :class:`ApprovalNoticeStep` (after-step): a reply was held, so mail the owner the reply,
  why it was held, and a signed Reply-To address to answer with one word.
* :class:`ApprovalReplyStep` (step 3): mail arriving at such a signed address is the owner's
  answer, never a customer message: approve or reject the held reply, and stop.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import MailhookError
from mailhook.logs import get_logger
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.oversight.approvals import Approvals
from mailhook.oversight.mail_approval import ApprovalNotice, ApprovalTokens, decision_word
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, ReplyState, User

log = get_logger(__name__)


class ApprovalNoticeStep:
    """Tell the owner a reply waits for them (no-op for other outcomes)."""

    name = "approval_notice"

    def __init__(self, notices: OwnerNotices, tokens: ApprovalTokens, public_url: str) -> None:
        self._notices = notices
        self._notice = ApprovalNotice(tokens, public_url)

    async def process(self, ctx: MessageContext) -> None:
        """Compose once and deliver the notice for a held reply."""
        mailbox = ctx.mailbox
        if ctx.outcome is None or ctx.outcome.action is not ActivityAction.QUEUED or mailbox is None:
            return
        held = await self._notices.delivery.replies.for_job(ctx.job.id, OutgoingKind.REPLY)
        if held is None or held.state is not ReplyState.HELD or held.data is None:
            return
        reasons = [ctx.outcome.reason] if ctx.outcome.reason else []
        try:
            result = await self._notice.send(
                self._notices, ctx.job.id, mailbox, ctx.owner_email, (held.id, held.data), reasons
            )
        except MailhookError as exc:  # the reply is safely held; the API still shows it
            log.warning("approval_notice_failed", error=type(exc).__name__)
            return
        ctx.outcome.detail["owner_notified"] = result.value


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
