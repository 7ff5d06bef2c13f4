"""The provider used when no model is configured: every message goes to the owner."""

from __future__ import annotations

from mailhook.agent.decision import Action, Decision, DecisionRequest
from mailhook.agent.model import Completion, Prompt


class NoModel:
    """Escalates everything; nothing is sent without a model."""

    async def decide(self, request: DecisionRequest) -> Decision:
        """Escalate with a reason the owner understands."""
        return Decision(Action.ESCALATE, reason="no model configured (llm.provider = none)")

    async def complete(self, prompt: Prompt) -> Completion:
        """No text: callers treat an unfinished answer as no answer."""
        return Completion("", unfinished="no model configured (llm.provider = none)")
