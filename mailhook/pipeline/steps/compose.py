"""Step 6, compose: reply-all recipients, threading headers and a deterministic Message-ID.

The Message-ID is derived from the installation secret and the job id, so every attempt for the
same job composes the same reply and the reply record's unique Message-ID stops a second one.
"""

from __future__ import annotations

import hmac

from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import compose_reply, make_message_id, render_bytes
from mailhook.mail.reply_all import reply_recipients
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import utcnow
from mailhook.store.suppressions import UnsubscribeLinks


def footer(signature: str, unsubscribe_url: str) -> str:
    """The owner's signature, then a line saying this is an AI agent and how to stop it."""
    notice = f"Sent by an AI assistant. To stop automatic replies: {unsubscribe_url}"
    return f"{signature.strip()}\n\n{notice}" if signature.strip() else notice


#: More reply-all recipients than this and the owner decides.
MAX_REPLY_RECIPIENTS = 50


class ComposeStep:
    """Fill ``ctx.recipients``, ``ctx.reply_message_id`` and ``ctx.reply_data``."""

    name = "compose"

    def __init__(self, secret: str, links: UnsubscribeLinks) -> None:
        self._secret = secret.encode()
        self._links = links

    def reply_seed(self, job_id: int) -> bytes:
        """Secret-salted seed so reply ids cannot be predicted from outside."""
        return hmac.digest(self._secret, f"reply:{job_id}".encode(), "sha256")

    async def process(self, ctx: MessageContext) -> None:
        """Build the reply message."""
        message, mailbox = ctx.need_message(), ctx.need_mailbox()
        assert ctx.decision is not None, "decide step did not run"
        recipients = reply_recipients(message, mailbox_address=mailbox.address, reply_all=mailbox.reply_all)
        if not recipients.all:
            raise Stop(ActivityAction.SKIPPED, "no address to reply to")
        if len(recipients.all) > MAX_REPLY_RECIPIENTS:
            # A reply-all to a huge list is never what the owner wants an agent to do alone.
            raise Stop(ActivityAction.ESCALATED, f"reply-all would reach {len(recipients.all)} addresses")
        ctx.recipients = recipients
        ctx.reply_message_id = make_message_id(self.reply_seed(ctx.job.id), domain_of(mailbox.address))
        unsubscribe = self._links.url(recipients.to[0])
        reply = compose_reply(
            message,
            from_addr=mailbox.address,
            from_name=mailbox.display_name,
            body_text=ctx.decision.reply_text,
            recipients=recipients,
            message_id=ctx.reply_message_id,
            date=utcnow(),
            footer=footer(mailbox.signature, unsubscribe),
            with_html=True,
            extra_headers={
                # Tells Exchange not to answer our reply with an out-of-office (loop prevention).
                "X-Auto-Response-Suppress": "All",
                # RFC 2369 + RFC 8058 one-click unsubscribe for the person we write to.
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        ctx.reply_data = render_bytes(reply)
