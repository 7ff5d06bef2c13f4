"""Step 1, parse: the raw bytes become a :class:`ParsedMessage`; the Message-ID joins the logs.

A large message is parsed in a worker thread. Parsing is pure Python and holds the GIL, but the
event loop, which the doors share with the workers, then gets the GIL back every
``sys.getswitchinterval()`` (1 ms, app.py) instead of waiting seconds for a 50 MB message, so
LMTP sessions keep being answered meanwhile (docs/reliability.md).
"""

from __future__ import annotations

import asyncio

import structlog

from mailhook.errors import MalformedMessage
from mailhook.mail.parse import ParsedMessage, parse_message
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction

#: Below this a parse takes a few milliseconds: a thread hand-off would cost more than it saves.
THREAD_PARSE_BYTES = 1 << 20


async def parsed(raw: bytes) -> ParsedMessage:
    """``parse_message(raw)``, off the event loop when ``raw`` is large."""
    if len(raw) < THREAD_PARSE_BYTES:
        return parse_message(raw)
    return await asyncio.to_thread(parse_message, raw)


class ParseStep:
    """Parse the message; an unparseable one is skipped, not retried forever."""

    name = "parse"

    async def process(self, ctx: MessageContext) -> None:
        """Fill ``ctx.message``."""
        try:
            ctx.message = await parsed(ctx.job.raw)
        except MalformedMessage as exc:
            raise Stop(ActivityAction.SKIPPED, f"malformed: {exc}") from None
        structlog.contextvars.bind_contextvars(message_id=ctx.message.message_id or "")
