"""``POST /api/v1/mailboxes/{id}/persona/test``: five sample e-mails and the agent's decisions.

A thin handler over :class:`mailhook.agent.persona_test.PersonaTester` (docs/api.md has the
contract the web UI codes against). Owner only; someone else's mailbox is a 404. Refusals come
before any model call: ``409`` deleted or ``pending_billing`` mailbox (or no model), ``402`` no
credits, ``429`` past ``agent.persona_test_max_per_hour``. A model that answers garbage is a
``502``; one that cannot be reached a ``503``. Nothing is charged unless five decisions came back.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from mailhook.agent.briefing import RequestBuilder
from mailhook.agent.persona_test import PersonaTester, SampleAnswerInvalid, SampleResult
from mailhook.api.auth import current_user
from mailhook.services import Services
from mailhook.store.mailboxes import Mailboxes
from mailhook.store.models import User


class BadModelAnswer(HTTPException):
    """The model answered, but not with anything usable (502 Bad Gateway)."""

    status_code = 502


class SampleEmailOut(msgspec.Struct):
    """A sample e-mail: ``{"from", "subject", "text"}``."""

    sender: str = msgspec.field(name="from")
    subject: str = ""
    text: str = ""


class SampleDecisionOut(msgspec.Struct):
    """``{"action": "reply" | "escalate" | "no_action", "reason", "trigger"}``."""

    action: str
    reason: str
    trigger: str


class SampleOut(msgspec.Struct):
    """One sample, the decision, and the reply text (the tentative one when escalated)."""

    email: SampleEmailOut
    decision: SampleDecisionOut
    reply: str


class PersonaTestOut(msgspec.Struct):
    """``{"samples": [...]}``, exactly five."""

    samples: list[SampleOut]


def _sample_out(result: SampleResult) -> SampleOut:
    decision = result.decision
    return SampleOut(
        email=SampleEmailOut(result.email.sender, result.email.subject, result.email.text),
        decision=SampleDecisionOut(decision.action.value, decision.reason, decision.trigger),
        reply=decision.reply_text,
    )


def _tester(state: State) -> PersonaTester:
    services: Services = state.services
    settings = services.settings
    return PersonaTester(
        services.sessions,
        Mailboxes(services.sessions, services.sealer, settings),
        services.models,
        RequestBuilder(settings),
        services.billing,
        max_per_hour=settings.agent.persona_test_max_per_hour,
    )


class PersonaTestController(Controller):
    """Test a mailbox's persona against model-written sample e-mails."""

    path = "/api/v1/mailboxes"
    dependencies = {"user": Provide(current_user)}
    request_max_body_size = 1024  # the route takes no body

    @post("/{mailbox_id:int}/persona/test", status_code=200)
    async def test_persona(
        self, state: State, user: NamedDependency[User], mailbox_id: FromPath[int]
    ) -> PersonaTestOut:
        """Five samples with the agent's decision and reply; costs one credit."""
        try:
            results = await _tester(state).run(user, mailbox_id)
        except SampleAnswerInvalid as exc:
            raise BadModelAnswer(detail=str(exc)) from None
        return PersonaTestOut([_sample_out(result) for result in results])
