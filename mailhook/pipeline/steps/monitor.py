"""After-step, monitor copy: in ``monitored`` mode the owner gets a copy of every sent reply.

The copy is built from the reply composed in this run; a job resumed after a crash has no
composed reply any more and sends no copy (a copy is never worth a second reply's risk).
"""

from __future__ import annotations

import hmac

from mailhook.logs import get_logger
from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import make_message_id, render_bytes
from mailhook.mail.notices import compose_monitor_copy
from mailhook.outbound.delivery import OutgoingDelivery
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind, OversightMode, utcnow
from mailhook.store.replies import NewOutgoing

log = get_logger(__name__)


class MonitorCopyStep:
    """Copy sent replies of monitored mailboxes to their owner."""

    name = "monitor_copy"

    def __init__(self, delivery: OutgoingDelivery, secret: str) -> None:
        self._delivery = delivery
        self._secret = secret.encode()

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
        seed = hmac.digest(self._secret, f"monitor:{ctx.job.id}".encode(), "sha256")
        message_id = make_message_id(seed, domain_of(mailbox.address))
        copy = compose_monitor_copy(
            owner=ctx.owner_email,
            mailbox_address=mailbox.address,
            reply=ctx.reply_data,
            message_id=message_id,
            date=utcnow(),
        )
        record = await self._delivery.replies.prepare(
            NewOutgoing(
                job_id=ctx.job.id,
                mailbox_id=mailbox.id,
                kind=OutgoingKind.MONITOR_COPY,
                message_id=message_id,
                envelope_sender=mailbox.address,
                recipients=(ctx.owner_email,),
                data=render_bytes(copy),
            )
        )
        try:
            result = await self._delivery.deliver(record, mailbox.id)
        except Exception as exc:  # the reply went out; a lost copy must not redo the job
            log.warning("monitor_copy_failed", error=type(exc).__name__)
            return
        ctx.outcome.detail["owner_copy"] = result.value
