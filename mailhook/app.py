"""The application: Litestar web app whose lifespan runs the doors and the spool workers.

Everything runs in one event loop: the HTTP server (uvicorn), the LMTP and SMTP doors
(aiosmtpd servers created with ``loop.create_server``) and the workers.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from mailhook.agentapi.inbox import InboxSweeper
from mailhook.api.errors import EXCEPTION_HANDLERS
from mailhook.api.protections import cors, rate_limits
from mailhook.api.routes import ROUTES
from mailhook.doors.delivery import DeliveryHandler
from mailhook.doors.imap import ImapDoor
from mailhook.doors.listener import start_lmtp, start_smtp
from mailhook.doors.milter import MilterServer, start_milter
from mailhook.errors import ConfigError
from mailhook.logs import get_logger
from mailhook.mcp.http import McpHttp
from mailhook.services import Services
from mailhook.spool.workers import WorkerPool
from mailhook.store.migrate import upgrade
from mailhook.store.persona_history import git_binary
from mailhook.webhooks.service import WebhookLoop

log = get_logger(__name__)


class Runtime:
    """Starts and stops the doors and workers around the web app."""

    def __init__(self, services: Services, *, migrate: bool = True) -> None:
        self.services = services
        self.migrate = migrate
        self.servers: list[asyncio.Server] = []
        self.milter: MilterServer | None = None
        self.imap: ImapDoor | None = None
        self.workers = WorkerPool(services.spool, services.run_job, services.settings.spool)
        self.webhooks = WebhookLoop(services.webhooks)
        self.agent_inbox_sweeper = InboxSweeper(services.agent.inbox)

    async def start(self) -> None:
        """Migrate (embedded default), open the doors, start the workers."""
        settings = self.services.settings
        try:
            git_binary()
        except ConfigError as exc:
            # Mail keeps flowing without git; only persona edits (their history) need it.
            log.warning("persona_history_unavailable", problem=str(exc))
        if self.migrate:
            await upgrade(self.services.engine)
        if settings.lmtp.enabled:
            handler = self._handler("lmtp", settings.lmtp.max_recipients, per_recipient=True)
            self.servers.append(await start_lmtp(handler, settings.lmtp))
            log.info("lmtp_listening", host=settings.lmtp.host, port=settings.lmtp.port)
        if settings.smtp.enabled:
            handler = self._handler("smtp", settings.lmtp.max_recipients, per_recipient=False)
            self.servers.append(await start_smtp(handler, settings.smtp))
            log.info("smtp_listening", host=settings.smtp.host, port=settings.smtp.port)
        if settings.milter.enabled:
            self.milter = await start_milter(self.services)
            log.info(
                "milter_listening",
                host=settings.milter.host,
                port=self.milter.port,
                mode=settings.milter.mode,
            )
        await self.workers.start()
        if settings.webhooks.enabled:
            self.webhooks.start()
        self.agent_inbox_sweeper.start()
        if settings.imap.enabled:
            services = self.services
            self.imap = ImapDoor(
                services.sessions,
                services.sealer,
                services.spool,
                settings.imap,
                max_message_bytes=settings.lmtp.max_message_bytes,
            )
            await self.imap.start()
        # Everything loaded so far lives as long as the process: move it out of the cyclic
        # garbage collector's view, so each collection walks only what requests create
        # (hundreds of thousands of module objects otherwise, on every full collection).
        gc.freeze()
        # The SQLite spool writer thread needs the GIL for a moment after each SQLite call; with
        # the default 5 ms switch interval a busy event loop keeps it waiting that long, and
        # every door waiting for that commit with it (docs/benchmarks.md: 1 ms halves ack time).
        sys.setswitchinterval(0.001)

    def _handler(self, source: str, max_recipients: int, *, per_recipient: bool) -> DeliveryHandler:
        return DeliveryHandler(
            self.services.directory,
            self.services.spool,
            source=source,
            max_recipients=max_recipients,
            per_recipient_replies=per_recipient,
        )

    async def stop(self) -> None:
        """Stop accepting, finish or release in-flight jobs, close connections."""
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        self.servers = []
        if self.imap is not None:
            await self.imap.stop()
            self.imap = None
        if self.milter is not None:
            await self.milter.close()
            self.milter = None
        await self.workers.stop()
        await self.webhooks.stop()
        await self.agent_inbox_sweeper.stop()
        await self.services.close()
        log.info("stopped", processed=self.workers.processed)


def create_app(services: Services, *, migrate: bool = True) -> Litestar:
    """The Litestar app; its lifespan owns a :class:`Runtime`."""
    runtime = Runtime(services, migrate=migrate)
    mcp_http = McpHttp(services.agent)  # /mcp: the agent primitives as MCP tools

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan, mcp_http.lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        logging_config=None,  # logging is ours (mailhook.logs): JSON, redacted
        request_max_body_size=services.settings.http.max_body_bytes,
        cors_config=cors(services.settings),
        middleware=rate_limits(services.settings),
    )
    app.state.services = services
    app.state.runtime = runtime
    app.state.mcp_http = mcp_http
    return app
