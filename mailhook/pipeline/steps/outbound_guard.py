"""Step 7, outbound guard: scan the composed reply before any delivery path sees it."""

from __future__ import annotations

import asyncio

from mailhook.guard.outbound import OutboundGuard
from mailhook.pipeline.context import Finding, MessageContext


class OutboundGuardStep:
    """Record findings; the oversight step holds the reply when one is high severity."""

    name = "outbound_guard"

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    async def process(self, ctx: MessageContext) -> None:
        """Fill ``ctx.findings``."""
        for hit in await asyncio.to_thread(self._guard.scan_message, ctx.reply_data):
            ctx.findings.append(Finding(hit.rule, hit.severity))
