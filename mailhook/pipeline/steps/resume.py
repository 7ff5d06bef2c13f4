"""Step 3, resume: a job that already has an outgoing record skips the model.

This is what makes a retry after a crash cheap and safe: no second model call, no second
composition; the delivery state machine decides whether anything may still be sent.
"""

from __future__ import annotations

from mailhook.pipeline.context import MessageContext, Stop
from mailhook.pipeline.steps.deliver import DeliverStep
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind
from mailhook.store.replies import ReplyStore


class ResumeStep:
    """Skip to delivery when an earlier attempt already got that far."""

    name = "resume"

    def __init__(self, replies: ReplyStore, deliver: DeliverStep) -> None:
        self._replies = replies
        self._deliver = deliver

    async def process(self, ctx: MessageContext) -> None:
        """Do nothing for a first attempt."""
        reply = await self._replies.for_job(ctx.job.id, OutgoingKind.REPLY)
        if reply is not None:
            await self._deliver.finish(ctx, reply)
        if await self._replies.for_job(ctx.job.id, OutgoingKind.ESCALATION) is not None:
            # The escalation-notice step delivers the stored notice if it is still pending.
            raise Stop(ActivityAction.ESCALATED, "escalated before a restart")
