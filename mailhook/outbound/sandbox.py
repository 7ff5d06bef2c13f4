"""The sandbox outbox: replies are kept (sealed) and shown in the API instead of being sent.

Default for ``make run``: a fresh install can be tried end to end without a relay and without
mailing anyone. Because the outbox row is unique per reply, the sandbox can always tell whether a
reply was delivered before a crash, so it delivers exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.outbound.transport import OutgoingMessage
from mailhook.store.models import OutboxMessage, OutgoingKind, Reply


class SandboxTransport:
    """Stores replies in ``outbox_messages``."""

    name = "sandbox"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
        self._sessions = sessions
        self._sealer = sealer

    async def send(self, message: OutgoingMessage) -> None:
        """Insert the sealed reply; a second insert for the same reply is a no-op."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    OutboxMessage(
                        mailbox_id=message.mailbox_id,
                        reply_id=message.reply_id,
                        message_id=message.message_id,
                        recipients=list(message.recipients),
                        sealed_message=self._sealer.seal(message.data),
                    )
                )
        except IntegrityError:
            if not await self.was_delivered(message.reply_id):
                raise

    async def was_delivered(self, reply_id: int) -> bool | None:
        """True when the outbox holds this reply."""
        async with self._sessions() as session:
            found = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.reply_id == reply_id))
        return found is not None


#: Activity actions whose job's reply went out: a reply, an approved held reply.
SENT_REPLY_ACTIONS = frozenset({"replied", "approved"})


def _replies_in_outbox(*columns: SQLColumnExpression[Any]) -> Select[Any]:
    """``columns`` of the replies (not the notices) the outbox keeps: the rule both forms share."""
    return (
        select(*columns)
        .select_from(Reply)
        .join(OutboxMessage, OutboxMessage.reply_id == Reply.id)
        .where(Reply.kind == OutgoingKind.REPLY.value)
    )


def outbox_id_column(
    job_id: SQLColumnExpression[int | None], action: SQLColumnExpression[str]
) -> ColumnElement[int | None]:
    """For a query over activity rows: the outbox message id of the row's reply, else NULL
    (the activity stream's per-row form of :func:`outbox_replies`)."""
    reply_in_outbox = _replies_in_outbox(OutboxMessage.id).where(Reply.job_id == job_id).scalar_subquery()
    return case((action.in_(SENT_REPLY_ACTIONS), reply_in_outbox), else_=None)


async def outbox_replies(
    sessions: async_sessionmaker[AsyncSession], mailbox_id: int, job_ids: Iterable[int | None]
) -> dict[int, int]:
    """job id → outbox message id, for the jobs among ``job_ids`` whose reply is in the outbox.

    What lets the activity log offer "View reply" in sandbox mode (the only place a sent reply's
    text is kept; delivered ones are not, by design).
    """
    wanted = sorted({job for job in job_ids if job is not None})
    if not wanted:
        return {}
    query = _replies_in_outbox(Reply.job_id, OutboxMessage.id).where(
        Reply.job_id.in_(wanted), OutboxMessage.mailbox_id == mailbox_id
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return {row[0]: row[1] for row in rows}
