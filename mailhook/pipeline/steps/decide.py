"""Step 6, decide: one model call (the mailbox's own model when it has one); escalation and
no-action end the run here."""

from __future__ import annotations

from mailhook.agent.decision import Action
from mailhook.agent.registry import ModelRegistry
from mailhook.errors import ValidationFailed
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction


class DecideStep:
    """Ask the mailbox's model; only a ``reply`` continues to compose."""

    name = "decide"

    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    async def process(self, ctx: MessageContext) -> None:
        """Fill ``ctx.decision``."""
        assert ctx.request is not None, "context step did not run"
        try:
            model = await self._models.for_mailbox(ctx.need_mailbox())
        except ValidationFailed as exc:
            # A refused model URL or an unreadable key: only the owner can fix it, so they decide.
            raise Stop(ActivityAction.ESCALATED, f"mailbox model unusable: {exc}") from None
        decision = await model.decide(ctx.request)
        ctx.decision = decision
        if decision.action is Action.NO_ACTION:
            raise Stop(ActivityAction.NO_ACTION, decision.reason)
        if decision.action is Action.ESCALATE:
            raise Stop(ActivityAction.ESCALATED, decision.reason, trigger=decision.trigger)
