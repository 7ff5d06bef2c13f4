"""Enqueue, claim (``FOR UPDATE SKIP LOCKED``), complete, retry with backoff and dead-letter.

A door may acknowledge a message only after :meth:`Spool.enqueue` returned: by then the sealed
raw bytes are committed (DESIGN.md invariant 1). A message already spooled for the same mailbox
(same content hash or same Message-ID) is acknowledged again without a second job, so an MTA
retry after a lost ``250`` cannot make mailhook answer twice (invariant 2).

Claiming takes a time-limited lease. A node that dies leaves its jobs ``running`` with a lease
that expires; any node may then take them. A node restarting under the same name takes its own
jobs back at once (:meth:`Spool.release_own`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.backoff import jittered
from mailhook.crypto import Sealer
from mailhook.doors.inbound import Inbound
from mailhook.errors import StoreUnavailable
from mailhook.logs import get_logger
from mailhook.mail.parse import message_id_of
from mailhook.settings import SpoolSettings
from mailhook.spool.priority import IngestPriority
from mailhook.spool.writer import JobWriter, NewJob
from mailhook.store.db import DB_UNAVAILABLE
from mailhook.store.models import JobStatus, SpoolJob, utcnow

log = get_logger(__name__)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 (content and Message-ID fingerprints; never reversible to content)."""
    return hashlib.sha256(data).hexdigest()


def message_id_hash(message_id: str | None) -> str | None:
    """Fingerprint of a Message-ID, compared case-sensitively as RFC 5322 ids are."""
    return sha256_hex(message_id.encode("utf-8", "surrogateescape")) if message_id else None


@dataclass(frozen=True)
class Accepted:
    """The spool's answer for one recipient of an :class:`Inbound`."""

    recipient: str
    job_id: int
    duplicate: bool


@dataclass(frozen=True)
class ClaimedJob:
    """A job this node holds the lease on, with its raw message opened."""

    id: int
    mailbox_id: int
    source: str
    envelope_sender: str
    recipient: str
    message_id_hash: str | None
    raw: bytes
    attempts: int


class Spool:
    """The spool service shared by doors, workers, the API and the CLI."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        settings: SpoolSettings,
        node: str,
        writer: JobWriter,
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._settings = settings
        self.node = node
        self.wake = asyncio.Event()
        self.ingest = IngestPriority(settings.ingest_burst_per_second, settings.ingest_max_wait_seconds)
        self.writer = writer

    # --- doors ---------------------------------------------------------------------------------

    async def enqueue(self, inbound: Inbound, targets: Sequence[tuple[str, int]]) -> list[Accepted]:
        """Commit one job per (recipient, mailbox id); duplicates are reported, not re-queued.

        Concurrent deliveries share one commit (:mod:`mailhook.spool.writer`). Raises
        :class:`StoreUnavailable` when the commit did not happen: the door must then answer
        with a temporary failure.
        """
        if not targets:
            return []
        mid_hash = message_id_hash(message_id_of(inbound.raw))
        content_hash = sha256_hex(inbound.raw)
        sealed = self._sealer.seal(inbound.raw)
        jobs = [
            NewJob(
                mailbox_id=mailbox_id,
                recipient=recipient,
                source=inbound.source,
                envelope_sender=inbound.envelope_sender,
                message_id_hash=mid_hash,
                content_hash=content_hash,
                size=len(inbound.raw),
                sealed_raw=sealed,
                received_at=inbound.received_at,
            )
            for recipient, mailbox_id in targets
        ]
        try:
            written = await self.writer.write(jobs)
        except DB_UNAVAILABLE as exc:
            raise StoreUnavailable("spool database unavailable") from exc
        if any(not w.duplicate for w in written):
            self.wake.set()
        return [
            Accepted(recipient, w.job_id, w.duplicate)
            for (recipient, _), w in zip(targets, written, strict=True)
        ]

    async def close(self) -> None:
        """Let the writer finish the commit in flight (at shutdown, after the doors closed)."""
        await self.writer.close()

    # --- workers -------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[int]:
        """Lease up to ``limit`` due jobs to this node; expired leases of others are taken too."""
        now = utcnow()
        due = or_(
            and_(SpoolJob.status == JobStatus.QUEUED.value, SpoolJob.next_attempt_at <= now),
            and_(SpoolJob.status == JobStatus.RUNNING.value, SpoolJob.lease_until < now),
        )
        async with self._sessions() as session, session.begin():
            query = (
                select(SpoolJob.id)
                .where(due)
                .order_by(SpoolJob.next_attempt_at, SpoolJob.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list((await session.scalars(query)).all())
            if ids:
                await session.execute(
                    update(SpoolJob)
                    .where(SpoolJob.id.in_(ids))
                    .values(
                        status=JobStatus.RUNNING.value,
                        lease_owner=self.node,
                        lease_until=now + timedelta(seconds=self._settings.lease_seconds),
                        attempts=SpoolJob.attempts + 1,
                    )
                )
        return ids

    async def renew(self, job_id: int) -> bool:
        """Extend this node's lease on a running job; False when the job is no longer ours."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(SpoolJob)
                .where(
                    SpoolJob.id == job_id,
                    SpoolJob.status == JobStatus.RUNNING.value,
                    SpoolJob.lease_owner == self.node,
                )
                .values(lease_until=utcnow() + timedelta(seconds=self._settings.lease_seconds))
            )
        return bool(getattr(result, "rowcount", 0))

    async def open(self, job_id: int) -> ClaimedJob | None:
        """Load a leased job and decrypt its raw message (None if it is gone or not ours)."""
        async with self._sessions() as session:
            job = await session.get(SpoolJob, job_id)
        if job is None or job.sealed_raw is None or job.lease_owner != self.node:
            return None
        return ClaimedJob(
            id=job.id,
            mailbox_id=job.mailbox_id,
            source=job.source,
            envelope_sender=job.envelope_sender,
            recipient=job.recipient,
            message_id_hash=job.message_id_hash,
            raw=self._sealer.open(job.sealed_raw),
            attempts=job.attempts,
        )

    async def complete(self, job_id: int, outcome: str) -> None:
        """The job is accounted for: erase the raw message, keep the metadata."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SpoolJob)
                .where(SpoolJob.id == job_id)
                .values(
                    status=JobStatus.DONE.value,
                    sealed_raw=None,
                    outcome=outcome,
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_until=None,
                )
            )

    async def retry_later(self, job_id: int, attempts: int, error: str) -> bool:
        """Back off, or move to dead-letter after ``max_attempts``. True when dead-lettered."""
        dead = attempts >= self._settings.max_attempts
        values: dict[str, object] = {
            "last_error": error[:500],
            "lease_owner": None,
            "lease_until": None,
        }
        if dead:
            values |= {"status": JobStatus.DEAD.value, "finished_at": utcnow()}
        else:
            values |= {
                "status": JobStatus.QUEUED.value,
                "next_attempt_at": self._next_attempt(attempts),
            }
        async with self._sessions() as session, session.begin():
            await session.execute(update(SpoolJob).where(SpoolJob.id == job_id).values(**values))
        return dead

    def _next_attempt(self, attempts: int) -> datetime:
        base = self._settings.backoff_seconds * 2 ** max(0, attempts - 1)
        delay = min(base, self._settings.backoff_max_seconds)
        # Full jitter on the upper half keeps many nodes from retrying in lock step.
        return utcnow() + timedelta(seconds=jittered(delay))

    async def release_own(self) -> int:
        """At start-up: jobs leased under this node's name died with its last process."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(SpoolJob)
                .where(SpoolJob.status == JobStatus.RUNNING.value, SpoolJob.lease_owner == self.node)
                .values(status=JobStatus.QUEUED.value, lease_owner=None, lease_until=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # --- operators -----------------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100) -> list[SpoolJob]:
        """Dead-lettered jobs, newest first."""
        async with self._sessions() as session:
            query = (
                select(SpoolJob)
                .where(SpoolJob.status == JobStatus.DEAD.value)
                .order_by(SpoolJob.id.desc())
                .limit(limit)
            )
            return list((await session.scalars(query)).all())

    async def requeue(self, job_id: int) -> bool:
        """Give a dead-lettered job a fresh set of attempts."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(SpoolJob)
                .where(SpoolJob.id == job_id, SpoolJob.status == JobStatus.DEAD.value)
                .values(
                    status=JobStatus.QUEUED.value,
                    attempts=0,
                    next_attempt_at=utcnow(),
                    finished_at=None,
                )
            )
        changed = bool(getattr(result, "rowcount", 0))
        if changed:
            self.wake.set()
        return changed

    async def depth(self) -> dict[str, int]:
        """Job counts by status (metrics, health)."""
        async with self._sessions() as session:
            rows = await session.execute(select(SpoolJob.status, func.count()).group_by(SpoolJob.status))
            return {status: int(count) for status, count in rows.all()}
