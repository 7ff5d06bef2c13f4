"""Step 10, record: one activity row per job, metadata only."""

from __future__ import annotations

from mailhook.logs import get_logger
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityLog

log = get_logger(__name__)


class RecordStep:
    """Write the outcome to the activity log."""

    name = "record"

    def __init__(self, activity: ActivityLog) -> None:
        self._activity = activity

    async def process(self, ctx: MessageContext) -> None:
        """Append the activity row for ``ctx.outcome``."""
        outcome = ctx.outcome
        assert outcome is not None
        detail = dict(outcome.detail)
        if ctx.findings:
            detail["findings"] = [{"rule": f.rule, "severity": f.severity} for f in ctx.findings]
        await self._activity.record(
            ctx.job.mailbox_id,
            outcome.action,
            job_id=ctx.job.id,
            recipient=outcome.recipient,
            reason=outcome.reason,
            message_id_hash=ctx.job.message_id_hash,
            detail=detail,
        )
        log.info("recorded", action=outcome.action.value, reason=outcome.reason)
