"""``/api/v1/agent/*``: the agent primitives over REST, authenticated by a mailbox API key.

``Authorization: Bearer mh_live_…`` (or ``mh_test_…``); anything else, a JWT included, is a 401.
Thin handlers over :class:`mailhook.agentapi.primitives.AgentPrimitives` (the MCP tools call the
same methods). A key over its request or send limit (``agentapi/limits.py``) is a 429 with
``Retry-After``. docs/agent-api.md is the reference.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, Protocol

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from mailhook.agentapi.compose import AttachmentIn
from mailhook.agentapi.inbox import InboxMessage, InboxSummary
from mailhook.agentapi.keys import Principal, looks_like_key
from mailhook.agentapi.limits import KeyRateLimited
from mailhook.agentapi.outgoing import SendResult
from mailhook.agentapi.primitives import AgentPrimitives, Decision, NewMail, PendingItem
from mailhook.errors import Unauthorized
from mailhook.services import Services

#: Attachments travel base64-encoded in the JSON body.
MAX_BODY_BYTES = 8 * 1024 * 1024
CHANNEL = "rest"


async def current_agent(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the key behind ``Authorization: Bearer mh_…`` (never a user's JWT)."""
    services: Services = request.app.state.services
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_key(token):
        raise Unauthorized("an agent API key is required: Authorization: Bearer mh_live_... or mh_test_...")
    return await services.agent.admit(token)


def key_rate_limited(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """429 with ``Retry-After`` (RFC 9110 §10.2.3), and the same seconds in the JSON body."""
    retry_after = exc.retry_after if isinstance(exc, KeyRateLimited) else 60
    return Response(
        {"error": "RateLimited", "detail": str(exc), "retry_after": retry_after},
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


class AttachmentBody(msgspec.Struct, forbid_unknown_fields=True):
    """One attachment."""

    filename: str
    content_type: str
    content_base64: str


class SendBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /agent/send``."""

    to: list[str] = []
    cc: list[str] = []
    bcc: list[str] = []
    subject: str
    text: str
    html: str | None = None
    attachments: list[AttachmentBody] = []


class ReplyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /agent/messages/{id}/reply`` and ``.../draft``."""

    text: str
    reply_all: bool = False


class DecideBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /agent/pending/{id}/decide``."""

    decision: Literal["approve", "reject"]
    text: str | None = None


def _primitives(state: State) -> AgentPrimitives:
    services: Services = state.services
    return services.agent


class Answer(Protocol):
    """``reply_email`` or ``draft_reply`` of :class:`AgentPrimitives`."""

    def __call__(
        self, principal: Principal, channel: str, message_id: int, text: str, *, reply_all: bool = False
    ) -> Awaitable[SendResult]: ...


async def _answer(primitive: Answer, agent: Principal, message_id: int, data: ReplyBody) -> SendResult:
    """The body of both answering routes: they differ only in the primitive they call."""
    return await primitive(agent, CHANNEL, message_id, data.text, reply_all=data.reply_all)


class AgentController(Controller):
    """check_inbox, read_email, get_thread, send_email, reply_email, draft_reply, list_pending,
    decide_email."""

    path = "/api/v1/agent"
    dependencies = {"agent": Provide(current_agent)}
    request_max_body_size = MAX_BODY_BYTES
    exception_handlers = {KeyRateLimited: key_rate_limited}

    @get("/inbox")
    async def check_inbox(self, state: State, agent: NamedDependency[Principal]) -> list[InboxSummary]:
        """Messages waiting for the agent, newest first."""
        return await _primitives(state).check_inbox(agent, CHANNEL)

    @get("/messages/{message_id:int}")
    async def read_email(
        self, state: State, agent: NamedDependency[Principal], message_id: FromPath[int]
    ) -> InboxMessage:
        """Headers, sanitised text, threat score and rule ids."""
        return await _primitives(state).read_email(agent, CHANNEL, message_id)

    @get("/messages/{message_id:int}/thread")
    async def get_thread(
        self, state: State, agent: NamedDependency[Principal], message_id: FromPath[int]
    ) -> list[InboxMessage]:
        """The conversation's waiting messages, oldest first."""
        return await _primitives(state).get_thread(agent, CHANNEL, message_id)

    @post("/send", status_code=200)
    async def send_email(
        self, state: State, agent: NamedDependency[Principal], data: JSONBody[SendBody]
    ) -> SendResult:
        """A new message: sent, or held for the owner."""
        mail = NewMail(
            to=data.to,
            cc=data.cc,
            bcc=data.bcc,
            subject=data.subject,
            text=data.text,
            html=data.html,
            attachments=[
                AttachmentIn(a.filename, a.content_type, a.content_base64) for a in data.attachments
            ],
        )
        return await _primitives(state).send_email(agent, CHANNEL, mail)

    @post("/messages/{message_id:int}/reply", status_code=200)
    async def reply_email(
        self,
        state: State,
        agent: NamedDependency[Principal],
        message_id: FromPath[int],
        data: JSONBody[ReplyBody],
    ) -> SendResult:
        """Answer a waiting message (recipients computed from it)."""
        return await _answer(_primitives(state).reply_email, agent, message_id, data)

    @post("/messages/{message_id:int}/draft", status_code=200)
    async def draft_reply(
        self,
        state: State,
        agent: NamedDependency[Principal],
        message_id: FromPath[int],
        data: JSONBody[ReplyBody],
    ) -> SendResult:
        """A reply for the owner to review in the approval queue; nothing is sent."""
        return await _answer(_primitives(state).draft_reply, agent, message_id, data)

    @get("/pending")
    async def list_pending(self, state: State, agent: NamedDependency[Principal]) -> list[PendingItem]:
        """Held messages of this mailbox."""
        return await _primitives(state).list_pending(agent, CHANNEL)

    @post("/pending/{pending_id:int}/decide", status_code=200)
    async def decide_email(
        self,
        state: State,
        agent: NamedDependency[Principal],
        pending_id: FromPath[int],
        data: JSONBody[DecideBody],
    ) -> Decision:
        """Approve or reject (owner-scope keys; never the key's own message)."""
        return await _primitives(state).decide_email(agent, CHANNEL, pending_id, data.decision, data.text)
