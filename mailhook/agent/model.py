"""What a model provider offers: one completion call, and the decision built on top of it.

Every provider answers :meth:`Model.complete` (a system text, a user text, a token budget) and
:meth:`Model.decide` (the one decision call per e-mail, ``prompts.decision_prompt``). The smaller
calls (document selection, persona-test samples) go through ``complete`` with their own prompts,
so they use the same endpoint, key, retries and timeouts as the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mailhook.agent.decision import Decider


@dataclass(frozen=True)
class Prompt:
    """One model call: the instructions, the (delimited) data, and how long the answer may be."""

    system: str = field(repr=False)
    user: str = field(repr=False)
    max_tokens: int
    #: Ask for a JSON object (OpenAI ``response_format``); an array answer needs this off.
    json_object: bool = False
    #: Mark the system prompt cacheable (Anthropic ``cache_control``): worth it for the persona.
    cache_system: bool = False


@dataclass(frozen=True)
class Completion:
    """The model's text; ``unfinished`` says why it is not a finished answer (cut off, refused)."""

    text: str = field(repr=False)
    unfinished: str = ""


class Model(Decider, Protocol):
    """A configured provider: the decision plus a general completion call."""

    async def complete(self, prompt: Prompt) -> Completion:
        """One call; raises ProviderUnavailable when the provider cannot answer."""
        ...
