"""Outgoing records: written before submission so a crash can never cause a second reply.

State machine (docs/reliability.md):

``pending`` → ``sending`` (committed *before* the transport is called) → ``sent``.
If the transport says the relay certainly did not take it, back to ``pending`` and the job is
retried. If a process finds ``sending`` on a restart, the previous attempt's outcome is unknown:
the transport is asked (the sandbox can tell), otherwise the record becomes ``unconfirmed`` and
is never sent again. ``(job_id, kind)`` and the deterministic ``message_id`` are both unique, so
two replies for one job cannot even be recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.store.models import OutgoingKind, Reply, ReplyState, utcnow


@dataclass(frozen=True)
class ReplyRecord:
    """An outgoing record as delivery sees it."""

    id: int
    kind: OutgoingKind
    state: ReplyState
    message_id: str
    envelope_sender: str
    recipients: tuple[str, ...]
    data: bytes | None

    def moved(self, state: ReplyState) -> ReplyRecord:
        """The same record in another state."""
        return replace(self, state=state)


@dataclass(frozen=True)
class NewOutgoing:
    """What is needed to record an outgoing message of a job."""

    job_id: int
    mailbox_id: int
    kind: OutgoingKind
    message_id: str
    envelope_sender: str
    recipients: tuple[str, ...]
    data: bytes


class ReplyStore:
    """Reads and moves outgoing records."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
        self._sessions = sessions
        self._sealer = sealer

    async def prepare(self, new: NewOutgoing, state: ReplyState = ReplyState.PENDING) -> ReplyRecord:
        """Create the record, or return the one an earlier attempt created for this job and kind."""
        existing = await self.for_job(new.job_id, new.kind)
        if existing is not None:
            return existing
        row = Reply(
            job_id=new.job_id,
            mailbox_id=new.mailbox_id,
            kind=new.kind.value,
            message_id=new.message_id,
            envelope_sender=new.envelope_sender,
            state=state.value,
            recipients=list(new.recipients),
            sealed_message=self._sealer.seal(new.data),
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            # Another worker holding an expired lease created it first.
            found = await self.for_job(new.job_id, new.kind)
            if found is None:
                raise
            return found
        return ReplyRecord(
            row.id, new.kind, state, new.message_id, new.envelope_sender, new.recipients, new.data
        )

    async def for_job(self, job_id: int, kind: OutgoingKind | None = None) -> ReplyRecord | None:
        """The job's record of ``kind`` (or its first record of any kind)."""
        query = select(Reply).where(Reply.job_id == job_id).order_by(Reply.id).limit(1)
        if kind is not None:
            query = query.where(Reply.kind == kind.value)
        async with self._sessions() as session:
            row = await session.scalar(query)
        if row is None:
            return None
        data = self._sealer.open(row.sealed_message) if row.sealed_message else None
        return ReplyRecord(
            row.id,
            OutgoingKind(row.kind),
            ReplyState(row.state),
            row.message_id,
            row.envelope_sender,
            tuple(row.recipients),
            data,
        )

    async def move(
        self,
        reply_id: int,
        to: ReplyState,
        *,
        expect: ReplyState | None = None,
        error: str = "",
        erase: bool = False,
    ) -> bool:
        """Change state (only from ``expect`` when given). ``erase`` drops the sealed body."""
        values: dict[str, object] = {"state": to.value}
        if error:
            values["last_error"] = error[:500]
        if erase:
            values["sealed_message"] = None
        if to is ReplyState.SENT:
            values["sent_at"] = utcnow()
        if to is ReplyState.SENDING:
            values["attempts"] = Reply.attempts + 1
        query = update(Reply).where(Reply.id == reply_id)
        if expect is not None:
            query = query.where(Reply.state == expect.value)
        async with self._sessions() as session, session.begin():
            result = await session.execute(query.values(**values))
        return bool(getattr(result, "rowcount", 0))
