"""After-step, record: one activity row per outcome (metadata only), and its credit.

The activity row is unique per (job, action), so a retried job neither logs nor pays twice.
When the charge uses the last credit, the owner's mailboxes pause and the owner gets one
notice, delivered like any outgoing message (crash-safe, through the transport).
"""

from __future__ import annotations

from email.message import EmailMessage

from mailhook.billing.credits import Credits
from mailhook.logs import get_logger
from mailhook.mail.notices import compose_billing_notice
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityLog
from mailhook.store.models import OutgoingKind, utcnow

log = get_logger(__name__)


class RecordStep:
    """Write the outcome to the activity log and charge for it."""

    name = "record"

    def __init__(
        self, activity: ActivityLog, credits: Credits, notices: OwnerNotices, public_url: str
    ) -> None:
        self._activity = activity
        self._credits = credits
        self._notices = notices
        self._billing_url = public_url.rstrip("/") + "/billing"

    async def process(self, ctx: MessageContext) -> None:
        """Append the activity row for ``ctx.outcome``; charge a credit for costing actions."""
        outcome = ctx.outcome
        assert outcome is not None
        detail = dict(outcome.detail)
        if ctx.findings:
            detail["findings"] = [{"rule": f.rule, "severity": f.severity} for f in ctx.findings]
        if ctx.threat and (ctx.threat.get("score") or 0):
            detail["threat"] = ctx.threat
        first_time = await self._activity.record(
            ctx.job.mailbox_id,
            outcome.action,
            job_id=ctx.job.id,
            recipient=outcome.recipient,
            reason=outcome.reason,
            message_id_hash=ctx.job.message_id_hash,
            detail=detail,
        )
        log.info("recorded", action=outcome.action.value, reason=outcome.reason)
        if first_time and ctx.mailbox is not None:
            paused = await self._credits.charge(ctx.mailbox.owner_id, outcome.action.value)
            if paused and await self._credits.claim_billing_notice(ctx.mailbox.owner_id):
                await self._notify_owner(ctx)

    async def _notify_owner(self, ctx: MessageContext) -> None:
        mailbox = ctx.need_mailbox()

        def compose(message_id: str) -> EmailMessage:
            return compose_billing_notice(
                owner=ctx.owner_email,
                mailbox_address=mailbox.address,
                billing_url=self._billing_url,
                message_id=message_id,
                date=utcnow(),
            )

        try:
            await self._notices.send(
                OutgoingKind.BILLING_NOTICE, ctx.job.id, mailbox, ctx.owner_email, compose
            )
        except Exception as exc:  # the reply itself is done; a failed notice must not redo it
            log.warning("billing_notice_failed", error=type(exc).__name__)
