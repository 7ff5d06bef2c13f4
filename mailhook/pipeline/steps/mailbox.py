"""Step 2, mailbox: load the mailbox; mail for a mailbox that is not active is not answered."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Mailbox, MailboxStatus, User


class MailboxStep:
    """Fill ``ctx.mailbox``."""

    name = "mailbox"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def process(self, ctx: MessageContext) -> None:
        """Stop with ``skipped`` unless the mailbox is active."""
        async with self._sessions() as session:
            mailbox = await session.get(Mailbox, ctx.job.mailbox_id)
            owner = await session.get(User, mailbox.owner_id) if mailbox else None
        if mailbox is None or owner is None:
            raise Stop(ActivityAction.SKIPPED, "mailbox no longer exists")
        ctx.mailbox = mailbox
        ctx.owner_email = owner.email
        if mailbox.status != MailboxStatus.ACTIVE.value:
            raise Stop(ActivityAction.SKIPPED, f"mailbox is {mailbox.status}")
