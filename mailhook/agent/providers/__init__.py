"""Model providers. Each turns a :class:`~mailhook.agent.decision.DecisionRequest` into a
:class:`~mailhook.agent.decision.Decision` with one call."""
