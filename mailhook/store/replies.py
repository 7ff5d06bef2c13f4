"""The reply record: written before submission so a crash can never cause a second reply.

State machine (docs/reliability.md):

``pending`` → ``sending`` (committed *before* the transport is called) → ``sent``.
If the transport says the relay certainly did not take it, back to ``pending`` and the job is
retried. If a process finds ``sending`` on a restart, the previous attempt's outcome is unknown:
the transport is asked (the sandbox can tell), otherwise the reply becomes ``unconfirmed`` and is
never sent again. ``job_id`` and the deterministic ``message_id`` are both unique, so two
replies for one job cannot even be recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.store.models import Reply, ReplyState, utcnow


@dataclass(frozen=True)
class ReplyRecord:
    """A reply row as the deliver step sees it."""

    id: int
    state: ReplyState
    message_id: str
    recipients: tuple[str, ...]
    data: bytes | None


class ReplyStore:
    """Reads and moves reply records."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
        self._sessions = sessions
        self._sealer = sealer

    async def prepare(
        self,
        *,
        job_id: int,
        mailbox_id: int,
        message_id: str,
        recipients: tuple[str, ...],
        data: bytes,
        state: ReplyState = ReplyState.PENDING,
    ) -> ReplyRecord:
        """Create the reply for a job, or return the one a previous attempt created."""
        existing = await self.for_job(job_id)
        if existing is not None:
            return existing
        try:
            async with self._sessions() as session, session.begin():
                row = Reply(
                    job_id=job_id,
                    mailbox_id=mailbox_id,
                    message_id=message_id,
                    state=state.value,
                    recipients=list(recipients),
                    sealed_message=self._sealer.seal(data),
                )
                session.add(row)
        except IntegrityError:
            # Another worker holding an expired lease created it first.
            found = await self.for_job(job_id)
            if found is None:
                raise
            return found
        return ReplyRecord(row.id, state, message_id, recipients, data)

    async def for_job(self, job_id: int) -> ReplyRecord | None:
        """The reply of a job, if any."""
        async with self._sessions() as session:
            row = await session.scalar(select(Reply).where(Reply.job_id == job_id))
        if row is None:
            return None
        data = self._sealer.open(row.sealed_message) if row.sealed_message else None
        return ReplyRecord(row.id, ReplyState(row.state), row.message_id, tuple(row.recipients), data)

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
