"""Step 4, guards: loop and etiquette rules (RFC 3834), the unsubscribe list, the per-sender
rate limit.

All of this runs before any model call, so a mail loop or a flood costs nothing.
"""

from __future__ import annotations

from datetime import timedelta

from mailhook.mail.addresses import normalize_address
from mailhook.mail.loop_rules import auto_reply_refusal
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction, ActivityLog
from mailhook.store.suppressions import Suppressions

RATE_WINDOW = timedelta(hours=1)


class EtiquetteGuardStep:
    """Stop with ``skipped`` and the rule's reason when a reply would be wrong."""

    name = "guards"

    def __init__(
        self, activity: ActivityLog, suppressions: Suppressions, replies_per_sender_hour: int
    ) -> None:
        self._activity = activity
        self._suppressions = suppressions
        self._limit = replies_per_sender_hour

    async def process(self, ctx: MessageContext) -> None:
        """Check the rules, then the rate limit."""
        message, mailbox = ctx.need_message(), ctx.need_mailbox()
        reason = auto_reply_refusal(
            message, envelope_sender=ctx.job.envelope_sender, mailbox_address=mailbox.address
        )
        if reason is not None:
            raise Stop(ActivityAction.SKIPPED, reason)
        sender = message.from_addr or normalize_address(ctx.job.envelope_sender)
        if await self._suppressions.contains(sender):
            raise Stop(ActivityAction.SKIPPED, "unsubscribed")
        sent = await self._activity.replies_to(mailbox.id, sender, within=RATE_WINDOW)
        if sent >= self._limit:
            raise Stop(ActivityAction.SKIPPED, "rate-limited", limit=self._limit)
