"""Workers: claim jobs, run the pipeline, complete, retry or dead-letter.

Workers live in the same event loop as the doors. A door's commit sets ``spool.wake`` so mail is
processed on arrival; otherwise workers poll every ``spool.poll_seconds`` (for jobs whose backoff
ended, and for work enqueued by other nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from mailhook.errors import TemporaryFailure
from mailhook.logs import get_logger
from mailhook.settings import SpoolSettings
from mailhook.spool.spool import ClaimedJob, Spool

log = get_logger(__name__)

#: Runs one job to an outcome (the action name); raises to ask for a retry.
JobRunner = Callable[[ClaimedJob], Awaitable[str]]


class WorkerPool:
    """``settings.workers`` tasks sharing one spool."""

    def __init__(self, spool: Spool, run: JobRunner, settings: SpoolSettings) -> None:
        self._spool = spool
        self._run = run
        self._settings = settings
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.processed = 0

    async def start(self) -> None:
        """Take back this node's own stale leases, then start the workers."""
        released = await self._spool.release_own()
        if released:
            log.info("released_stale_leases", jobs=released)
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"mailhook-worker-{n}")
            for n in range(self._settings.workers)
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let in-flight jobs finish for ``grace`` seconds, then cancel them.

        A cancelled job keeps its lease and is taken back on the next start (same node name)
        or by another node when the lease expires.
        """
        self._stopping.set()
        self._spool.wake.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                ids = await self._spool.claim(self._settings.batch)
            except Exception as exc:  # database down: wait and try again, never die
                log.warning("claim_failed", error=type(exc).__name__)
                await self._idle()
                continue
            if not ids:
                await self._idle()
                continue
            for job_id in ids:
                await self._spool.ingest.lull()
                await self._process(job_id)

    async def _idle(self) -> None:
        self._spool.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._spool.wake.wait(), timeout=self._settings.poll_seconds)

    async def _process(self, job_id: int) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(job=job_id)
        try:
            # A claimed job may have waited behind others of its batch: extend the lease first.
            if not await self._spool.renew(job_id):
                return
            job = await self._spool.open(job_id)
            if job is None:
                return
            structlog.contextvars.bind_contextvars(mailbox=job.mailbox_id)
            try:
                async with self._heartbeat(job.id):
                    outcome = await self._run(job)
            except Exception as exc:
                await self._retry(job, exc)
                return
            await self._spool.complete(job.id, outcome)
            self.processed += 1
        except Exception as exc:  # the database went away mid-job: the lease expires, retried
            log.warning("job_bookkeeping_failed", error=type(exc).__name__)
        finally:
            structlog.contextvars.clear_contextvars()

    @contextlib.asynccontextmanager
    async def _heartbeat(self, job_id: int) -> AsyncIterator[None]:
        """Keep renewing the job's lease while it runs: a slow model (or a long burst at the
        doors) must not let another node take a job that is still being worked on."""

        async def renew() -> None:
            interval = self._settings.lease_seconds / 3
            while True:
                await asyncio.sleep(interval)
                try:
                    if not await self._spool.renew(job_id):
                        log.warning("lease_lost")
                        return
                except Exception as exc:  # database away: the next beat tries again
                    log.warning("lease_renew_failed", error=type(exc).__name__)

        beat = asyncio.create_task(renew(), name=f"mailhook-lease-{job_id}")
        try:
            yield
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _retry(self, job: ClaimedJob, exc: Exception) -> None:
        error = str(exc) if isinstance(exc, TemporaryFailure) else type(exc).__name__
        if not isinstance(exc, TemporaryFailure):
            log.exception("job_failed", error=type(exc).__name__)
        dead = await self._spool.retry_later(job.id, job.attempts, error)
        log.warning("job_retry" if not dead else "job_dead_lettered", attempts=job.attempts, error=error)
