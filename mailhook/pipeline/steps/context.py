"""Step 5, context: what the model will see: the mailbox brief, the message, its PDF text and
the reference documents the model picks for it (``agent.briefing``).

Thread history (earlier messages from the hosted store or the IMAP account) needs a mailbox
store; until the IMAP door lands the request carries the new message only.
"""

from __future__ import annotations

import contextlib

from mailhook.agent.briefing import RequestBuilder
from mailhook.agent.model import Model
from mailhook.agent.registry import ModelRegistry
from mailhook.errors import ValidationFailed
from mailhook.pipeline.context import MessageContext


class ContextStep:
    """Build ``ctx.request``."""

    name = "context"

    def __init__(self, builder: RequestBuilder, models: ModelRegistry) -> None:
        self._builder = builder
        self._models = models

    async def process(self, ctx: MessageContext) -> None:
        """The decision request, with documents when the mailbox has any (and a model)."""
        mailbox = ctx.need_mailbox()
        model: Model | None = None
        if self._models.has_model(mailbox):
            # A refused model URL: no documents here; the decide step escalates, saying why.
            with contextlib.suppress(ValidationFailed):
                model = await self._models.for_mailbox(mailbox)
        ctx.request = await self._builder.build(mailbox, ctx.need_message(), model)
