"""Step 5, threat: score the inbound message before the model sees it (docs/guard.md).

Invisible characters and hidden HTML are removed: the sanitised text is what the model gets.
Above ``guard.inbound_escalate_at`` the owner decides instead of the model. Only the score
and rule ids are recorded, never content.
"""

from __future__ import annotations

import asyncio
import dataclasses

from mailhook.guard.inbound import score_inbound
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.settings import GuardSettings
from mailhook.store.activity import ActivityAction


def split_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


class ThreatStep:
    """Sanitise ``ctx.message``; escalate dangerous mail."""

    name = "threat"

    def __init__(self, settings: GuardSettings) -> None:
        self._settings = settings
        self._trusted = split_list(settings.trusted_authserv_ids)

    async def process(self, ctx: MessageContext) -> None:
        """Score, keep the verdict on the context, hand the model the sanitised text."""
        message = ctx.need_message()
        # Pure CPU, linear but ~3 s/MB: off the event loop that also runs the doors.
        report = await asyncio.to_thread(
            score_inbound,
            message,
            trusted_authserv_ids=self._trusted,
            warn_at=self._settings.inbound_warn_at,
            escalate_at=self._settings.inbound_escalate_at,
        )
        ctx.threat = {"score": report.score, "rules": list(report.rules), "verdict": report.verdict}
        if report.verdict == "escalate":
            raise Stop(ActivityAction.ESCALATED, f"inbound threat score {report.score}")
        ctx.message = dataclasses.replace(
            message, text=report.sanitized_text, subject=report.sanitized_subject or message.subject
        )
