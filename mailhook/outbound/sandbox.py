"""The sandbox outbox: replies are kept (sealed) and shown in the API instead of being sent.

Default for ``make run``: a fresh install can be tried end to end without a relay and without
mailing anyone. Because the outbox row is unique per reply, the sandbox can always tell whether a
reply was delivered before a crash, so it delivers exactly once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.outbound.transport import OutgoingMessage
from mailhook.store.models import OutboxMessage


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
