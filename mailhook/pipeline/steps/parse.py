"""Step 1, parse: the raw bytes become a :class:`ParsedMessage`; the Message-ID joins the logs."""

from __future__ import annotations

import structlog

from mailhook.errors import MalformedMessage
from mailhook.mail.parse import parse_message
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction


class ParseStep:
    """Parse the message; an unparseable one is skipped, not retried forever."""

    name = "parse"

    async def process(self, ctx: MessageContext) -> None:
        """Fill ``ctx.message``."""
        try:
            ctx.message = parse_message(ctx.job.raw)
        except MalformedMessage as exc:
            raise Stop(ActivityAction.SKIPPED, f"malformed: {exc}") from None
        structlog.contextvars.bind_contextvars(message_id=ctx.message.message_id or "")
