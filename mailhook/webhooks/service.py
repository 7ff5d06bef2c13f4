"""The webhook service object (built once in ``Services``) and the loop a Runtime runs."""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.logs import get_logger
from mailhook.settings import WebhookSettings
from mailhook.webhooks.db import read_engine
from mailhook.webhooks.dispatcher import Deliveries
from mailhook.webhooks.endpoints import WebhookEndpoints
from mailhook.webhooks.fanout import FanOut
from mailhook.webhooks.urls import UrlPolicy

log = get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


class Webhooks:
    """Endpoints (API), fan-out and deliveries (the loop), sharing one URL policy."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        settings: WebhookSettings,
        node: str,
    ) -> None:
        self.settings = settings
        self._engine = engine
        #: For polling reads (here and in the activity stream): see :mod:`mailhook.webhooks.db`.
        self.read_engine = read_engine(engine)
        self.policy = UrlPolicy(settings)
        self.endpoints = WebhookEndpoints(sessions, sealer, settings, self.policy)
        self.deliveries = Deliveries(self.read_engine, sessions, sealer, settings, self.policy, node)
        self.fanout = FanOut(self.read_engine, sessions)

    async def close(self) -> None:
        """Close the deliveries' connections and the polling engine (when not the main one)."""
        await self.deliveries.close()
        if self.read_engine is not self._engine:
            await self.read_engine.dispose()

    async def run_once(self) -> None:
        """One fan-out pass, then send everything due."""
        await self.fanout.scan()
        await self.deliveries.send_due()


class WebhookLoop:
    """Runs :meth:`Webhooks.run_once` every ``poll_seconds`` until stopped."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        """Cancel it; a request cut short is sent again once its lease expires."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self._webhooks.deliveries.close()  # its kept-alive connections; reopened if needed

    async def _run(self) -> None:
        pruned = 0.0
        while True:
            try:
                await self._webhooks.run_once()
                if time.monotonic() - pruned > PRUNE_EVERY_SECONDS:
                    await self._webhooks.deliveries.prune()
                    pruned = time.monotonic()
            except Exception as exc:  # the database may be away; the next pass tries again
                log.warning("webhooks_pass_failed", error=type(exc).__name__)
            await asyncio.sleep(self._webhooks.settings.poll_seconds)
