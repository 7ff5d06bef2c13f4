"""After-step, escalation notice: when a run ends ``escalated``, the owner is told by mail.

The notice is an outgoing record of kind ``escalation`` and is delivered by the same
crash-safe delivery as replies, so a retried job never mails the owner twice.
"""

from __future__ import annotations

import hmac

from mailhook.agent.decision import Action
from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import make_message_id, render_bytes
from mailhook.mail.notices import compose_escalation
from mailhook.outbound.delivery import Delivered, OutgoingDelivery
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, utcnow
from mailhook.store.replies import NewOutgoing


class EscalationNoticeStep:
    """Mail the owner for every escalated message (no-op for other outcomes)."""

    name = "escalation_notice"

    def __init__(self, delivery: OutgoingDelivery, secret: str) -> None:
        self._delivery = delivery
        self._secret = secret.encode()

    async def process(self, ctx: MessageContext) -> None:
        """Compose (once) and deliver the notice; note the result in the outcome."""
        outcome = ctx.outcome
        if outcome is None or outcome.action is not ActivityAction.ESCALATED or ctx.mailbox is None:
            return
        record = await self._delivery.replies.for_job(ctx.job.id, OutgoingKind.ESCALATION)
        if record is None:
            if ctx.message is None or not ctx.owner_email:
                return
            record = await self._delivery.replies.prepare(self._compose(ctx))
        result = await self._delivery.deliver(record, ctx.mailbox.id)
        outcome.detail["owner_notified"] = result in (Delivered.SENT, Delivered.ALREADY_SENT)

    def _compose(self, ctx: MessageContext) -> NewOutgoing:
        mailbox, message = ctx.need_mailbox(), ctx.need_message()
        seed = hmac.digest(self._secret, f"escalation:{ctx.job.id}".encode(), "sha256")
        message_id = make_message_id(seed, domain_of(mailbox.address))
        decision = ctx.decision
        tentative = decision.reply_text if decision and decision.action is Action.ESCALATE else ""
        notice = compose_escalation(
            message,
            owner=ctx.owner_email,
            mailbox_address=mailbox.address,
            reason=ctx.outcome.reason if ctx.outcome else "",
            trigger=decision.trigger if decision else "",
            tentative_reply=tentative,
            message_id=message_id,
            date=utcnow(),
        )
        return NewOutgoing(
            job_id=ctx.job.id,
            mailbox_id=mailbox.id,
            kind=OutgoingKind.ESCALATION,
            message_id=message_id,
            envelope_sender=mailbox.address,
            recipients=(ctx.owner_email,),
            data=render_bytes(notice),
        )
