"""The decision protocol: what the model is asked and the one shape of what it may answer.

The model answers with JSON ``{"action": "reply" | "escalate" | "no_action", "trigger": ...,
"reason": ..., "reply": ...}``. A plain-text answer is accepted too: its whole trimmed text
``NO_ACTION`` or ``DISCARD`` means no action, anything else is the reply text. The model never
names recipients: they are computed from the message (``mail.reply_all``). See docs/agent.md.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Protocol

from mailhook.mail.parse import ParsedMessage


class Action(enum.StrEnum):
    """What the agent decided."""

    REPLY = "reply"
    ESCALATE = "escalate"
    NO_ACTION = "no_action"


NO_ACTION_WORDS = frozenset({"NO_ACTION", "DISCARD"})


@dataclass(frozen=True)
class Decision:
    """The model's decision for one message."""

    action: Action
    reply_text: str = ""
    reason: str = ""
    trigger: str = ""


@dataclass(frozen=True)
class MailboxBrief:
    """What of a mailbox's configuration the model sees."""

    address: str
    persona: str = ""
    tone: str = ""
    rules: str = ""
    triggers: tuple[str, ...] = ()
    max_output_tokens: int = 1000


@dataclass(frozen=True)
class DecisionRequest:
    """Everything one decision needs; the message and thread are untrusted data."""

    mailbox: MailboxBrief
    message: ParsedMessage
    thread: tuple[ParsedMessage, ...] = field(default=())
    attachments_text: str = field(default="", repr=False)
    #: ``(name, text)`` of the reference documents picked for this message, fetched fresh.
    documents: tuple[tuple[str, str], ...] = field(default=(), repr=False)


class Decider(Protocol):
    """A model behind one call."""

    async def decide(self, request: DecisionRequest) -> Decision:
        """Decide what to do with the message. Raises ProviderUnavailable when down."""
        ...


def parse_answer(text: str) -> Decision:
    """Turn the model's answer (JSON or plain text) into a :class:`Decision`."""
    stripped = text.strip()
    if stripped.upper() in NO_ACTION_WORDS:
        return Decision(Action.NO_ACTION, reason="model answered " + stripped.upper())
    payload = _json_object(stripped)
    if payload is None:
        return _plain_answer(stripped)
    action = str(payload.get("action", "")).strip().lower()
    reply = str(payload.get("reply") or "").strip()
    reason = str(payload.get("reason") or "")[:500]
    trigger = str(payload.get("trigger") or "")[:200]
    if action == Action.ESCALATE:
        return Decision(Action.ESCALATE, reply_text=reply, reason=reason, trigger=trigger)
    if action == Action.NO_ACTION or reply.upper() in NO_ACTION_WORDS:
        return Decision(Action.NO_ACTION, reason=reason)
    if action == Action.REPLY and reply:
        return Decision(Action.REPLY, reply_text=reply, reason=reason)
    # Anything else is not a decision we can act on safely: the owner looks at it.
    return Decision(Action.ESCALATE, reason="model answer had no usable action")


def _plain_answer(stripped: str) -> Decision:
    if _looks_like_json(stripped):
        # A cut-off or broken JSON answer is never mail for a customer: the owner decides.
        return Decision(Action.ESCALATE, reason="model answer was malformed JSON")
    return Decision(Action.REPLY, reply_text=stripped) if stripped else _empty()


def _empty() -> Decision:
    return Decision(Action.ESCALATE, reason="model returned an empty answer")


def _looks_like_json(text: str) -> bool:
    """An answer that set out to be the JSON decision (object, array or fenced block)."""
    return text.startswith(("{", "[", "```"))


def _json_object(text: str) -> dict[str, object] | None:
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
