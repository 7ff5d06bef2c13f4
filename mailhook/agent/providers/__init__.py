"""Model providers. Each turns a :class:`~mailhook.agent.model.Prompt` into a completion and a
:class:`~mailhook.agent.decision.DecisionRequest` into a :class:`~mailhook.agent.decision.Decision`
with one call; :func:`provider_for` picks one, ``agent.registry`` keeps one per configuration."""

from __future__ import annotations

from mailhook.agent.model import Model
from mailhook.agent.providers.none import NoModel
from mailhook.agent.providers.openai_compat import OpenAICompatible
from mailhook.settings import LlmSettings


def provider_for(settings: LlmSettings) -> Model:
    """The provider ``settings.provider`` names, configured by ``settings`` alone.

    Only the settings object is read, so a mailbox with its own model passes a
    ``dataclasses.replace(settings.llm, ...)`` copy (``agent.overrides.effective_llm``).
    """
    if settings.provider == "openai":
        return OpenAICompatible(settings)
    if settings.provider == "anthropic":
        # Imported here: the SDK takes seconds to import and most installs never use it.
        from mailhook.agent.providers.anthropic import AnthropicProvider

        return AnthropicProvider(settings)
    return NoModel()
