"""The one object every pipeline step reads and fills in, and the outcomes that end a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mailhook.agent.decision import Decision, DecisionRequest
from mailhook.mail.parse import ParsedMessage
from mailhook.mail.reply_all import Recipients
from mailhook.spool.spool import ClaimedJob
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Mailbox


@dataclass
class Outcome:
    """How a message was accounted for; becomes one activity row and the job's outcome."""

    action: ActivityAction
    reason: str = ""
    recipient: str = ""
    detail: dict[str, object] = field(default_factory=dict)


class Stop(Exception):
    """Raised by a step to end the run early with an outcome (skip, escalate, no action...)."""

    def __init__(
        self, action: ActivityAction, reason: str = "", *, recipient: str = "", **detail: object
    ) -> None:
        super().__init__(reason)
        self.outcome = Outcome(action, reason, recipient=recipient, detail=dict(detail))


@dataclass
class Finding:
    """A rule that matched outbound content (ids and severity only, never the content)."""

    rule: str
    severity: str


@dataclass
class MessageContext:
    """Everything known about one job as it moves through the steps."""

    job: ClaimedJob
    message: ParsedMessage | None = None
    mailbox: Mailbox | None = None
    owner_email: str = ""
    request: DecisionRequest | None = None
    decision: Decision | None = None
    recipients: Recipients | None = None
    reply_message_id: str = ""
    reply_data: bytes = b""
    findings: list[Finding] = field(default_factory=list)
    threat: dict[str, object] = field(default_factory=dict)
    outcome: Outcome | None = None

    def need_message(self) -> ParsedMessage:
        """The parsed message (the parse step runs first)."""
        assert self.message is not None, "parse step did not run"
        return self.message

    def need_mailbox(self) -> Mailbox:
        """The mailbox row (the mailbox step runs second)."""
        assert self.mailbox is not None, "mailbox step did not run"
        return self.mailbox


class Step(Protocol):
    """A named pipeline step."""

    name: str

    async def process(self, ctx: MessageContext) -> None:
        """Do one thing to the context, or raise :class:`Stop`."""
        ...
