"""Run the steps in order; turn :class:`Stop` into an outcome; run the after-steps
(escalation notice, record) exactly once per run.

Exceptions other than ``Stop`` propagate to the worker, which retries the job with backoff
(temporary failures) and dead-letters it after ``spool.max_attempts``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from mailhook.logs import get_logger
from mailhook.pipeline.context import MessageContext, Outcome, Step, Stop
from mailhook.store.activity import ActivityAction

log = get_logger(__name__)

#: Awaited between steps; returns when the step may run.
Pause = Callable[[], Awaitable[None]]


class Pipeline:
    """A tuple of steps, plus after-steps that always run on the outcome."""

    def __init__(self, steps: Sequence[Step], after: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        self.after = tuple(after)

    @property
    def names(self) -> tuple[str, ...]:
        """Step names in order (for docs, logs and tests)."""
        return tuple(s.name for s in (*self.steps, *self.after))

    async def run(self, ctx: MessageContext, between: Pause | None = None) -> Outcome:
        """Process one job to an outcome; ``between`` is awaited before each step (the spool's
        ingest priority: a burst at the doors goes first, see mailhook/spool/priority.py)."""
        for step in self.steps:
            if between is not None:
                await between()
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
        for step in self.after:
            await step.process(ctx)
        return ctx.outcome
