"""After-step, record: one activity row per outcome (metadata only), and its credit.

The activity row is unique per (job, action), so a retried job neither logs nor pays twice.
When the charge uses the last credit, the owner's mailboxes pause and the owner gets one
notice, delivered like any outgoing message (crash-safe, through the transport):
``billing.notice.BillingNotices``, which approvals and persona tests charge through too.
"""

from __future__ import annotations

from mailhook.billing.notice import BillingNotices
from mailhook.logs import get_logger
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityLog

log = get_logger(__name__)


class RecordStep:
    """Write the outcome to the activity log and charge for it."""

    name = "record"

    def __init__(self, activity: ActivityLog, billing: BillingNotices) -> None:
        self._activity = activity
        self._billing = billing

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
            await self._billing.charge(ctx.mailbox, ctx.owner_email, outcome.action.value, job_id=ctx.job.id)
