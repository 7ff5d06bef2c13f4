"""Step 4, context: what the model will see of the mailbox and the thread.

Thread history (earlier messages from the hosted store or the IMAP account) is added by the
agent issue; until then the request carries the new message only.
"""

from __future__ import annotations

from mailhook.agent.decision import DecisionRequest, MailboxBrief
from mailhook.pipeline.context import MessageContext


class ContextStep:
    """Build ``ctx.request``."""

    name = "context"

    async def process(self, ctx: MessageContext) -> None:
        """Copy the mailbox configuration into the decision request."""
        mailbox = ctx.need_mailbox()
        brief = MailboxBrief(
            address=mailbox.address,
            persona=mailbox.persona,
            tone=mailbox.tone,
            rules=mailbox.rules,
            triggers=tuple(mailbox.triggers or ()),
            max_output_tokens=mailbox.max_output_tokens,
        )
        ctx.request = DecisionRequest(mailbox=brief, message=ctx.need_message())
