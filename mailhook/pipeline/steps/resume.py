"""Step 2b, resume: a job that already has a reply record goes straight to delivery.

This is what makes a retry after a crash cheap and safe: no second model call, no second
composition, and the reply state machine decides whether anything may still be sent.
"""

from __future__ import annotations

from mailhook.pipeline.context import MessageContext
from mailhook.pipeline.steps.deliver import DeliverStep
from mailhook.store.replies import ReplyStore


class ResumeStep:
    """Skip to delivery when an earlier attempt already composed the reply."""

    name = "resume"

    def __init__(self, replies: ReplyStore, deliver: DeliverStep) -> None:
        self._replies = replies
        self._deliver = deliver

    async def process(self, ctx: MessageContext) -> None:
        """Do nothing for a first attempt."""
        record = await self._replies.for_job(ctx.job.id)
        if record is not None:
            await self._deliver.finish(ctx, record)
