"""After-step, monitor copy: in ``monitored`` mode the owner gets a copy of every sent reply.

The copy is built from the reply composed in this run; a job resumed after a crash has no
composed reply any more and sends no copy (a copy is never worth a second reply's risk).
"""

from __future__ import annotations

from email.message import EmailMessage

from mailhook.logs import get_logger
from mailhook.mail.notices import compose_monitor_copy
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, OversightMode, utcnow

log = get_logger(__name__)


class MonitorCopyStep:
    """Copy sent replies of monitored mailboxes to their owner."""

    name = "monitor_copy"

    def __init__(self, notices: OwnerNotices) -> None:
        self._notices = notices

    async def process(self, ctx: MessageContext) -> None:
        """No-op unless this run sent a reply of a monitored mailbox."""
        mailbox = ctx.mailbox
        if (
            mailbox is None
            or mailbox.mode != OversightMode.MONITORED.value
            or ctx.outcome is None
            or ctx.outcome.action is not ActivityAction.REPLIED
            or not ctx.reply_data
        ):
            return

        def compose(message_id: str) -> EmailMessage:
            return compose_monitor_copy(
                owner=ctx.owner_email,
                mailbox_address=mailbox.address,
                reply=ctx.reply_data,
                message_id=message_id,
                date=utcnow(),
            )

        try:
            result = await self._notices.send(
                OutgoingKind.MONITOR_COPY, ctx.job.id, mailbox, ctx.owner_email, compose
            )
        except Exception as exc:  # the reply went out; a lost copy must not redo the job
            log.warning("monitor_copy_failed", error=type(exc).__name__)
            return
        ctx.outcome.detail["owner_copy"] = result.value
