"""Group commit for the doors: concurrent deliveries share one durable transaction.

A door may answer ``250`` only after the message is committed (DESIGN.md invariant 1), and a
commit costs a disk flush. Under load many LMTP sessions reach DATA at the same moment, so the
writers here collect every delivery that arrives while the previous commit is in flight and
commit them together: one flush for the group, each door answered as soon as its group is on
disk. If a group fails, each delivery of it is tried again in a transaction of its own, so one
bad delivery (say, for a mailbox erased a moment ago) never fails its neighbours.

Two writers share the same duplicate rule (one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` per
job; on a conflict the existing job is reported as a duplicate):

- :class:`SqliteThreadWriter` for a SQLite file (the embedded default): a dedicated thread with
  its own ``sqlite3`` connection. The event loop only hands the rows over; the statements and
  the ``fsync`` run in the thread, which releases the GIL while SQLite works (docs/benchmarks.md
  measured the async ORM path at ~6 ms of event-loop CPU per delivery).
- :class:`~mailhook.spool.pg_writer.PostgresWriter` for PostgreSQL: the same grouping in the
  event loop, over an asyncpg connection of its own with prepared statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.dialects import sqlite as sqlite_dialect

from mailhook.errors import StoreUnavailable
from mailhook.logs import get_logger
from mailhook.store.db import sqlite_pragmas
from mailhook.store.models import JobStatus

log = get_logger(__name__)


@dataclass(frozen=True)
class NewJob:
    """One job to create: a sealed message for one recipient's mailbox."""

    mailbox_id: int
    recipient: str
    source: str
    envelope_sender: str
    message_id_hash: str | None
    content_hash: str
    size: int
    sealed_raw: bytes
    received_at: datetime


@dataclass(frozen=True)
class Written:
    """The spool's answer for one :class:`NewJob`: its job id, and whether it already existed."""

    job_id: int
    duplicate: bool


class JobWriter(Protocol):
    """Commits new jobs; :meth:`write` returns only once they are durable."""

    #: Transactions committed so far (several deliveries share one under load).
    commits: int

    async def write(self, jobs: Sequence[NewJob]) -> list[Written]:
        """Create ``jobs`` (one delivery) and wait for the commit."""
        ...

    async def close(self) -> None:
        """Finish what was handed over, then release the connection."""
        ...


@dataclass
class PendingDelivery:
    """One caller's jobs and where its answer goes."""

    jobs: Sequence[NewJob]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Written]] = field(repr=False)

    def settle(self, outcome: list[Written] | BaseException) -> None:
        """Answer the caller from any thread (the caller may have given up: then nothing)."""

        def _set() -> None:
            if self.future.done():
                return
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(_set)


def _group_commit(
    batch: list[PendingDelivery],
    commit: Callable[[list[PendingDelivery]], list[list[Written]]],
    failed: Callable[[Exception], BaseException],
) -> None:
    """Commit ``batch`` together; on failure, each delivery alone (so only the culprit fails)."""
    try:
        results = commit(batch)
    except Exception as exc:
        if len(batch) == 1:
            batch[0].settle(failed(exc))
            return
        for delivery in batch:
            _group_commit([delivery], commit, failed)
        return
    for delivery, written in zip(batch, results, strict=True):
        delivery.settle(written)


# --- SQLite: a writer thread ---------------------------------------------------------------------

# One INSERT for both databases, with numbered parameters (``?1`` on SQLite, ``$1`` on
# PostgreSQL): the last one, the arrival time, is both ``next_attempt_at`` and ``created_at``.
_JOB_COLUMNS = (
    "mailbox_id",
    "source",
    "envelope_sender",
    "recipient",
    "message_id_hash",
    "content_hash",
    "size",
    "sealed_raw",
    "status",
    "next_attempt_at",
)


def insert_sql(mark: str) -> str:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, with placeholders ``?1``/``$1`` …"""
    values = ", ".join(f"{mark}{n}" for n in range(1, len(_JOB_COLUMNS) + 1))
    # Built from the constant column list and the placeholder mark only, never from input.
    return (
        f"INSERT INTO spool_jobs ({', '.join(_JOB_COLUMNS)}, attempts, last_error, outcome, created_at) "  # noqa: S608
        f"VALUES ({values}, 0, '', '', {mark}{len(_JOB_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id"
    )


def find_sql(mark: str) -> str:
    """The existing job a conflicting INSERT ran into (same content or same Message-ID)."""
    return (
        f"SELECT id FROM spool_jobs WHERE mailbox_id = {mark}1 "  # noqa: S608 - constants only
        f"AND (content_hash = {mark}2 OR message_id_hash = {mark}3) ORDER BY id LIMIT 1"
    )


def job_values(job: NewJob, arrived: object) -> tuple[object, ...]:
    """The parameters of the INSERT, in ``_JOB_COLUMNS`` order."""
    return (
        job.mailbox_id,
        job.source,
        job.envelope_sender,
        job.recipient,
        job.message_id_hash,
        job.content_hash,
        job.size,
        job.sealed_raw,
        JobStatus.QUEUED.value,
        arrived,
    )


_SQLITE_INSERT = insert_sql("?")
_SQLITE_FIND = find_sql("?")
# SQLAlchemy's own DATETIME formatting, so the rows written here compare and read back exactly
# like rows written through the ORM (SQLite compares these timestamps as text).
_format_datetime: Callable[[datetime], str] = sqlite_dialect.DATETIME().bind_processor(  # type: ignore[no-untyped-call, assignment]
    sqlite_dialect.dialect()
)


def _sqlite_timestamp(value: datetime) -> str:
    return _format_datetime(value.astimezone(UTC).replace(tzinfo=None))


class SqliteThreadWriter:
    """Group commit on a SQLite file through one connection owned by a writer thread."""

    def __init__(self, database: str, busy_timeout: float = 10.0) -> None:
        self._database = database
        self._busy_timeout = busy_timeout
        self._queue: queue.SimpleQueue[PendingDelivery | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.commits = 0

    async def write(self, jobs: Sequence[NewJob]) -> list[Written]:
        """Hand ``jobs`` to the writer thread and wait for their commit."""
        loop = asyncio.get_running_loop()
        delivery = PendingDelivery(jobs, loop, loop.create_future())
        self._ensure_thread()
        self._queue.put(delivery)
        return await delivery.future

    async def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join, 30.0)
        self._thread = None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mailhook-spool-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = self._drain(batch)
            try:
                if connection is None:
                    connection = self._connect()
                _group_commit(batch, functools.partial(self._commit, connection), _sqlite_failure)
            except Exception as exc:  # cannot even open the file: every caller gets a 4xx
                connection = None
                for delivery in batch:
                    delivery.settle(_sqlite_failure(exc))
            if stop:
                break
        if connection is not None:
            connection.close()

    def _drain(self, batch: list[PendingDelivery]) -> bool:
        """Add every delivery already waiting to ``batch``; True when asked to stop."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)

    def _commit(self, connection: sqlite3.Connection, batch: list[PendingDelivery]) -> list[list[Written]]:
        results = _sqlite_commit(connection, batch)
        self.commits += 1
        return results

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._database, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        sqlite_pragmas(connection, None)
        return connection


def _sqlite_commit(connection: sqlite3.Connection, batch: list[PendingDelivery]) -> list[list[Written]]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        results = [[_sqlite_insert(connection, job) for job in delivery.jobs] for delivery in batch]
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    return results


def _sqlite_insert(connection: sqlite3.Connection, job: NewJob) -> Written:
    arrived = _sqlite_timestamp(job.received_at)
    row = connection.execute(_SQLITE_INSERT, job_values(job, arrived)).fetchone()
    if row is not None:
        return Written(int(row[0]), duplicate=False)
    existing = connection.execute(
        _SQLITE_FIND, (job.mailbox_id, job.content_hash, job.message_id_hash)
    ).fetchone()
    if existing is None:  # a conflict on another constraint: not a duplicate of ours
        raise sqlite3.IntegrityError("spool insert conflicted without a duplicate")
    return Written(int(existing[0]), duplicate=True)


def _sqlite_failure(exc: Exception) -> BaseException:
    if isinstance(exc, sqlite3.OperationalError):  # locked, disk full, I/O error: try later
        log.warning("spool_commit_failed", error=type(exc).__name__)
        return StoreUnavailable("spool database unavailable")
    return exc
