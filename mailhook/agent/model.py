"""What a model provider offers: one completion call, and the decision built on top of it.

Every provider answers :meth:`Model.complete` (a system text, a user text, a token budget) and
:meth:`Model.decide` (the one decision call per e-mail, ``prompts.decision_prompt``). The smaller
calls (document selection, persona-test samples) go through ``complete`` with their own prompts,
so they use the same endpoint, key, retries and timeouts as the decision.

Each call has a :class:`Purpose`, the label it is metered under (``observe.MeteredModel``).
:func:`calls_for` puts a whole piece of work under one purpose: a persona test's decisions and
document picks are spent on the test, not on mail.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from mailhook.agent.decision import Decider


class Purpose(enum.StrEnum):
    """Why a model call is made (the ``purpose`` label of the model metrics)."""

    DECIDE = "decide"
    SELECT = "select"
    PERSONA_TEST = "persona_test"


# Set by calls_for(); copied into the tasks started inside it (asyncio.gather), reset on exit.
_SCOPE: ContextVar[Purpose | None] = ContextVar("mailhook_llm_purpose", default=None)


@contextmanager
def calls_for(purpose: Purpose) -> Iterator[None]:
    """Every model call made inside the block counts as ``purpose``, whatever its own."""
    token = _SCOPE.set(purpose)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def purpose_of(own: Purpose) -> Purpose:
    """The purpose a call is counted under: the enclosing :func:`calls_for`, else its own."""
    return _SCOPE.get() or own


@dataclass(frozen=True)
class Prompt:
    """One model call: the instructions, the (delimited) data, and how long the answer may be."""

    system: str = field(repr=False)
    user: str = field(repr=False)
    max_tokens: int
    purpose: Purpose
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
