"""Step 5, decide: one model call; escalation and no-action end the run here."""

from __future__ import annotations

from mailhook.agent.decision import Action, Decider
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction


class DecideStep:
    """Ask the decider; only a ``reply`` continues to compose."""

    name = "decide"

    def __init__(self, decider: Decider) -> None:
        self._decider = decider

    async def process(self, ctx: MessageContext) -> None:
        """Fill ``ctx.decision``."""
        assert ctx.request is not None, "context step did not run"
        decision = await self._decider.decide(ctx.request)
        ctx.decision = decision
        if decision.action is Action.NO_ACTION:
            raise Stop(ActivityAction.NO_ACTION, decision.reason)
        if decision.action is Action.ESCALATE:
            raise Stop(ActivityAction.ESCALATED, decision.reason, trigger=decision.trigger)
