"""After-step, escalation notice: when a run ends ``escalated``, the owner is told by mail.

The notice is an outgoing record of kind ``escalation`` (outbound/owner_notices.py), so a
retried job never mails the owner twice.
"""

from __future__ import annotations

from email.message import EmailMessage

from mailhook.agent.decision import Action
from mailhook.mail.notices import compose_escalation
from mailhook.outbound.delivery import Delivered
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, utcnow


class EscalationNoticeStep:
    """Mail the owner for every escalated message (no-op for other outcomes)."""

    name = "escalation_notice"

    def __init__(self, notices: OwnerNotices) -> None:
        self._notices = notices

    async def process(self, ctx: MessageContext) -> None:
        """Compose (once) and deliver the notice; note the result in the outcome."""
        outcome = ctx.outcome
        if outcome is None or outcome.action is not ActivityAction.ESCALATED or ctx.mailbox is None:
            return
        if ctx.message is None or not ctx.owner_email:
            return
        result = await self._notices.send(
            OutgoingKind.ESCALATION,
            ctx.job.id,
            ctx.mailbox,
            ctx.owner_email,
            lambda mid: self._compose(ctx, mid),
        )
        outcome.detail["owner_notified"] = result in (Delivered.SENT, Delivered.ALREADY_SENT)

    def _compose(self, ctx: MessageContext, message_id: str) -> EmailMessage:
        decision = ctx.decision
        tentative = decision.reply_text if decision and decision.action is Action.ESCALATE else ""
        return compose_escalation(
            ctx.need_message(),
            owner=ctx.owner_email,
            mailbox_address=ctx.need_mailbox().address,
            reason=ctx.outcome.reason if ctx.outcome else "",
            trigger=decision.trigger if decision else "",
            tentative_reply=tentative,
            message_id=message_id,
            date=utcnow(),
        )
