"""Step 5, context: what the model will see: the mailbox brief, the message and its PDF text.

Thread history (earlier messages from the hosted store or the IMAP account) needs a mailbox
store; until the IMAP door lands the request carries the new message only.
"""

from __future__ import annotations

from mailhook.agent.decision import DecisionRequest, MailboxBrief
from mailhook.agent.pdf import attachments_as_text_async
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
        message = ctx.need_message()
        # PDF text is extracted off the event loop, with time and size bounds (agent/pdf.py).
        attachments = await attachments_as_text_async(message.attachments)
        ctx.request = DecisionRequest(mailbox=brief, message=message, attachments_text=attachments)
