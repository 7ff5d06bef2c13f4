"""Run the steps in order; turn :class:`Stop` into an outcome; record exactly once.

Exceptions other than ``Stop`` propagate to the worker, which retries the job with backoff
(temporary failures) and dead-letters it after ``spool.max_attempts``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailhook.logs import get_logger
from mailhook.pipeline.context import MessageContext, Outcome, Step, Stop
from mailhook.store.activity import ActivityAction

log = get_logger(__name__)


class Pipeline:
    """A tuple of steps plus the one that records the outcome."""

    def __init__(self, steps: Sequence[Step], record: Step) -> None:
        self.steps = tuple(steps)
        self.record = record

    @property
    def names(self) -> tuple[str, ...]:
        """Step names in order (for docs, logs and tests)."""
        return (*(s.name for s in self.steps), self.record.name)

    async def run(self, ctx: MessageContext) -> Outcome:
        """Process one job to an outcome."""
        for step in self.steps:
            try:
                await step.process(ctx)
            except Stop as stop:
                ctx.outcome = stop.outcome
                log.info(
                    "pipeline_stop",
                    step=step.name,
                    action=stop.outcome.action.value,
                    reason=stop.outcome.reason,
                )
                break
        if ctx.outcome is None:
            ctx.outcome = Outcome(ActivityAction.ERROR, "pipeline ended without an outcome")
        await self.record.process(ctx)
        return ctx.outcome
