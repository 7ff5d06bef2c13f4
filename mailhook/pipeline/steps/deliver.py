"""Step 9, deliver: send the composed reply through the crash-safe delivery service."""

from __future__ import annotations

from mailhook.outbound.delivery import Delivered, OutgoingDelivery
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, ReplyState
from mailhook.store.replies import NewOutgoing, ReplyRecord


def new_reply(ctx: MessageContext) -> NewOutgoing:
    """The reply composed by the compose step, as a record to create."""
    assert ctx.recipients is not None, "compose step did not run"
    mailbox = ctx.need_mailbox()
    return NewOutgoing(
        job_id=ctx.job.id,
        mailbox_id=mailbox.id,
        kind=OutgoingKind.REPLY,
        message_id=ctx.reply_message_id,
        envelope_sender=mailbox.address,
        recipients=ctx.recipients.all,
        data=ctx.reply_data,
    )


class DeliverStep:
    """Send exactly once, or record why not."""

    name = "deliver"

    def __init__(self, delivery: OutgoingDelivery) -> None:
        self._delivery = delivery

    async def process(self, ctx: MessageContext) -> None:
        """Record the reply (pending), then deliver it; always ends the run."""
        record = await self._delivery.replies.prepare(new_reply(ctx))
        await self.finish(ctx, record)

    async def finish(self, ctx: MessageContext, record: ReplyRecord) -> None:
        """Take an existing reply record to its end state; always raises :class:`Stop`."""
        if record.state is ReplyState.HELD:
            raise Stop(ActivityAction.QUEUED, "held for approval")
        if record.state is ReplyState.DRAFTED:
            raise Stop(ActivityAction.DRAFTED, "draft mode")
        primary = record.recipients[0] if record.recipients else ""
        result = await self._delivery.deliver(record, ctx.need_mailbox().id)
        if result is Delivered.SENT:
            raise Stop(ActivityAction.REPLIED, "", recipient=primary)
        if result is Delivered.ALREADY_SENT:
            raise Stop(ActivityAction.REPLIED, "sent before a restart", recipient=primary)
        raise Stop(ActivityAction.ERROR, f"reply {result.value}", recipient=primary)
