"""Group commit on PostgreSQL: the doors' deliveries through a dedicated asyncpg connection.

The grouping and the duplicate rule are those of :mod:`mailhook.spool.writer`; this module only
talks to PostgreSQL. asyncpg's prepared statements keep the event loop's share small (the async
ORM path cost several milliseconds of CPU per delivery, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from mailhook.errors import StoreUnavailable
from mailhook.logs import get_logger
from mailhook.spool.writer import NewJob, PendingDelivery, Written, find_sql, insert_sql, job_values

log = get_logger(__name__)

_PG_INSERT = insert_sql("$")
_PG_FIND = find_sql("$")

#: What one delivery can be refused for (say, a mailbox erased a moment ago); anything else
#: means the database is away: the door answers 4xx and the next delivery connects again.
_PG_DELIVERY_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)


class PostgresWriter:
    """Group commit on PostgreSQL through one asyncpg connection of its own.

    Deliveries that arrive while a commit is in flight wait for the next one, which takes them
    all. asyncpg's prepared statements keep the event loop's share small (the ORM path cost
    several milliseconds of CPU per delivery).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parsed = make_url(url)
        self._connect_args: dict[str, Any] = {
            **parsed.translate_connect_args(username="user", database="database"),
            **dict(parsed.query),
            "timeout": timeout,
            "command_timeout": timeout,
        }
        self._connection: asyncpg.Connection | None = None
        self.commits = 0
        self._waiting: list[PendingDelivery] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, jobs: Sequence[NewJob]) -> list[Written]:
        """Queue ``jobs`` for the next group commit and wait for it."""
        loop = asyncio.get_running_loop()
        delivery = PendingDelivery(jobs, loop, loop.create_future())
        self._waiting.append(delivery)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="mailhook-spool-group-commit")
        return await delivery.future

    async def close(self) -> None:
        """Wait for the commit in flight, then close the connection."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=5)
            self._connection = None

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            await self._commit_group(batch)

    async def _commit_group(self, batch: list[PendingDelivery]) -> None:
        try:
            results = await self._commit(batch)
        except Exception as exc:
            if not isinstance(exc, _PG_DELIVERY_ERRORS) or len(batch) == 1:
                # The database is away: every delivery of the group gets a 4xx at once.
                for delivery in batch:
                    delivery.settle(self._failure(exc))
                return
            for delivery in batch:
                await self._commit_group([delivery])
            return
        for delivery, written in zip(batch, results, strict=True):
            delivery.settle(written)

    async def _commit(self, batch: list[PendingDelivery]) -> list[list[Written]]:
        for attempt in range(2):
            connection = await self._connect()
            try:
                async with connection.transaction():
                    results = [[await _pg_insert(connection, job) for job in d.jobs] for d in batch]
                self.commits += 1
                return results
            except asyncpg.UniqueViolationError:
                # Another node committed the same message between our INSERT and its conflict
                # check: the second pass sees its job and reports a duplicate.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = None
            self._connection = await asyncpg.connect(**self._connect_args)
        return self._connection

    def _failure(self, exc: Exception) -> BaseException:
        refused: bool = isinstance(exc, _PG_DELIVERY_ERRORS)
        if not refused:
            if self._connection is not None:
                self._connection.terminate()
                self._connection = None
            log.warning("spool_commit_failed", error=type(exc).__name__)
            return StoreUnavailable("spool database unavailable")
        return exc


async def _pg_insert(connection: asyncpg.Connection, job: NewJob) -> Written:
    job_id = await connection.fetchval(_PG_INSERT, *job_values(job, job.received_at.astimezone(UTC)))
    if job_id is not None:
        return Written(int(job_id), duplicate=False)
    existing = await connection.fetchval(_PG_FIND, job.mailbox_id, job.content_hash, job.message_id_hash)
    if existing is None:  # a conflict on another constraint: not a duplicate of ours
        raise asyncpg.UniqueViolationError("spool insert conflicted without a duplicate")
    return Written(int(existing), duplicate=True)
