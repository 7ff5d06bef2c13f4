"""``GET /api/v1/activity/stream``: the signed-in user's activity as Server-Sent Events.

Every event is one activity row of any of the user's mailboxes, ``id:`` = the row id and
``data:`` = the row as the activity list shows it (plus ``mailbox_id``). A reconnecting client
sends ``Last-Event-ID`` (or ``?last_event_id=``) and gets only newer rows. The stream polls the
shared database (``http.sse_poll_seconds``), so it shows activity from every node, and it sends
a comment line when idle (``http.sse_keepalive_seconds``) so proxies keep the connection open.

Browsers' ``EventSource`` cannot send an ``Authorization`` header, so
``POST /api/v1/activity/stream-token`` trades a normal token for a short-lived one that is good
for this stream only (``?token=``). It is signed with a key derived from the JWT secret, so it
is worthless as a normal bearer token, and a normal token is refused as ``?token=``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import func, select

from mailhook.api.auth import ALGORITHM, current_user, user_id_from_token
from mailhook.errors import RateLimited, Unauthorized, ValidationFailed
from mailhook.outbound.sandbox import outbox_id_column
from mailhook.services import Services
from mailhook.store.models import MAX_ID, Activity, Mailbox, User, utcnow
from mailhook.webhooks.db import reading

AUDIENCE = "mailhook:activity-stream"
RETRY_MS = 3000
BATCH = 200
#: Rows younger than this are read again on the next poll, so one that commits late (its id
#: drawn before a neighbour's) is still sent; see webhooks/fanout.py for the same reasoning.
GRACE = timedelta(seconds=10)


@dataclass
class StreamToken:
    """``POST /activity/stream-token``."""

    token: str
    expires_in: int


class _Ticket:
    """One open stream; counted while alive (a never-started stream is collected, not leaked)."""


def _stream_key(secret: str) -> str:
    return hmac.new(secret.encode(), b"mailhook activity stream token", hashlib.sha256).hexdigest()


def issue_stream_token(user_id: int, secret: str, ttl_seconds: int) -> str:
    """A token that opens the activity stream of ``user_id`` and nothing else."""
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, _stream_key(secret), algorithm=ALGORITHM)


def stream_token_user(token: str, secret: str) -> int:
    """The user a stream token was issued to; :class:`Unauthorized` for anything else."""
    try:
        claims = jwt.decode(
            token,
            _stream_key(secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise Unauthorized("invalid or expired stream token") from None


def _encode_row(row: Any) -> str:
    item = {
        "id": row.id,
        "mailbox_id": row.mailbox_id,
        "action": row.action,
        "recipient": row.recipient,
        "reason": row.reason,
        "message_id_hash": row.message_id_hash,
        "created_at": row.created_at,
        "reply_outbox_id": row.reply_outbox_id,
    }
    return msgspec.json.encode(item).decode()


class ActivityStreamController(Controller):
    """The activity stream and its token."""

    path = "/api/v1/activity"

    @post("/stream-token", status_code=200, dependencies={"user": Provide(current_user)})
    async def stream_token(self, state: State, user: NamedDependency[User]) -> StreamToken:
        """A token for ``GET /activity/stream?token=`` (EventSource cannot send headers)."""
        services: Services = state.services
        ttl = services.settings.http.sse_token_ttl_seconds
        return StreamToken(issue_stream_token(user.id, services.settings.security.jwt_secret, ttl), ttl)

    # Not in the OpenAPI schema: a stream is no request/response pair a generic client can use.
    @get("/stream", include_in_schema=False)
    async def stream(
        self,
        request: Request[Any, Any, Any],
        state: State,
        token: FromQuery[str | None] = None,
        last_event_id: FromQuery[str | None] = None,
    ) -> ServerSentEvent:
        """The caller's activity as ``text/event-stream``."""
        services: Services = state.services
        user_id = await _stream_user(request, services, token)
        # The header wins: a browser reconnects to the same URL (query included) with the header.
        header = request.headers.get("last-event-id")
        resume = _resume_from(header if header is not None else last_event_id)
        tickets = _tickets(request)
        open_streams = tickets.setdefault(user_id, weakref.WeakSet())
        if len(open_streams) >= services.settings.http.sse_max_streams_per_user:
            raise RateLimited("too many open activity streams")
        ticket = _Ticket()
        open_streams.add(ticket)
        start = resume if resume is not None else await _latest_id(services)
        return ServerSentEvent(_events(services, user_id, start, ticket, open_streams))


async def _stream_user(request: Request[Any, Any, Any], services: Services, token: str | None) -> int:
    secret = services.settings.security.jwt_secret
    if token is not None:
        user_id = stream_token_user(token, secret)
    else:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not bearer:
            raise Unauthorized("missing bearer token or stream token")
        user_id = user_id_from_token(bearer.strip(), secret)
    async with services.sessions() as session:
        if await session.get(User, user_id) is None:
            raise Unauthorized("invalid or expired token")
    return user_id


def _resume_from(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(r"[0-9]{1,10}", value.strip()) or int(value) > MAX_ID:
        raise ValidationFailed("Last-Event-ID must be an activity id")
    return int(value)


def _tickets(request: Request[Any, Any, Any]) -> dict[int, weakref.WeakSet[_Ticket]]:
    state = request.app.state
    tickets: dict[int, weakref.WeakSet[_Ticket]] | None = getattr(state, "activity_streams", None)
    if tickets is None:
        tickets = {}
        state.activity_streams = tickets
    return tickets


async def _latest_id(services: Services) -> int:
    async with reading(services.webhooks.read_engine) as conn:
        return int(await conn.scalar(select(func.max(Activity.id))) or 0)


async def _events(
    services: Services, user_id: int, start: int, ticket: _Ticket, open_streams: weakref.WeakSet[_Ticket]
) -> AsyncIterator[ServerSentEventMessage]:
    http = services.settings.http
    loop = asyncio.get_running_loop()
    deadline = loop.time() + http.sse_max_seconds
    floor, sent = start, set[int]()
    quiet_since = loop.time()
    try:
        yield ServerSentEventMessage(data=None, retry=RETRY_MS, comment="connected")
        while loop.time() < deadline:
            rows = await _rows_after(services, user_id, floor)
            floor, fresh = _advance(rows, floor, sent)
            for row in fresh:
                yield ServerSentEventMessage(data=_encode_row(row), id=row.id)
            if fresh:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= http.sse_keepalive_seconds:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                quiet_since = loop.time()
            await asyncio.sleep(http.sse_poll_seconds)
    finally:
        open_streams.discard(ticket)


def _advance(rows: list[Any], floor: int, sent: set[int]) -> tuple[int, list[Any]]:
    """The rows not sent yet, and the new floor: past every row older than :data:`GRACE`."""
    fresh = [row for row in rows if row.id not in sent]
    sent.update(row.id for row in fresh)
    settled_before = utcnow() - GRACE
    for row in rows:
        created: datetime = row.created_at
        if created > settled_before:
            break
        floor = row.id
    if not fresh and len(rows) >= BATCH:
        floor = rows[-1].id  # a full batch of young rows, all sent: move on rather than stall
    sent.difference_update({i for i in sent if i <= floor})
    return floor, fresh


async def _rows_after(services: Services, user_id: int, floor: int) -> list[Any]:
    query = (
        select(
            Activity.id,
            Activity.mailbox_id,
            Activity.action,
            Activity.recipient,
            Activity.reason,
            Activity.message_id_hash,
            Activity.created_at,
            outbox_id_column(Activity.job_id, Activity.action).label("reply_outbox_id"),
        )
        .join(Mailbox, Mailbox.id == Activity.mailbox_id)
        .where(Mailbox.owner_id == user_id, Activity.id > floor)
        .order_by(Activity.id)
        .limit(BATCH)
    )
    async with reading(services.webhooks.read_engine) as conn:
        return list((await conn.execute(query)).all())
