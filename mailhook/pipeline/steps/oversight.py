"""Step 8, oversight: send, hold for the owner's approval, or keep as a draft.

``gated`` holds every reply; any mode holds a reply with a high-severity guard finding;
``draft`` keeps it as a draft. Held and drafted replies are sealed in the reply record.
"""

from __future__ import annotations

from mailhook.pipeline.context import MessageContext, Stop
from mailhook.pipeline.steps.deliver import new_reply
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OversightMode, ReplyState
from mailhook.store.replies import ReplyStore


class OversightStep:
    """Let autonomous and monitored replies through; hold or draft the rest."""

    name = "oversight"

    def __init__(self, replies: ReplyStore) -> None:
        self._replies = replies

    async def process(self, ctx: MessageContext) -> None:
        """Stop with ``queued`` (held) or ``drafted`` when the reply must not be sent now."""
        mailbox = ctx.need_mailbox()
        high = sorted({f.rule for f in ctx.findings if f.severity == "high"})
        if high or mailbox.mode == OversightMode.GATED.value:
            await self._keep(ctx, ReplyState.HELD)
            reason = "outbound guard: " + ", ".join(high) if high else "gated mode"
            raise Stop(ActivityAction.QUEUED, reason, rules=high)
        if mailbox.mode == OversightMode.DRAFT.value:
            await self._keep(ctx, ReplyState.DRAFTED)
            raise Stop(ActivityAction.DRAFTED, "draft mode")

    async def _keep(self, ctx: MessageContext, state: ReplyState) -> None:
        await self._replies.prepare(new_reply(ctx), state)
