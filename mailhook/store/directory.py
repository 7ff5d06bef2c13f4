"""Recipient lookup for the doors: which mailbox (if any) answers for an address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import StoreUnavailable
from mailhook.store.db import DB_UNAVAILABLE
from mailhook.store.models import Mailbox, MailboxStatus


def candidate_addresses(address: str) -> tuple[str, ...]:
    """The address, then without a ``+tag`` sub-address (``bot+x@d`` is ``bot@d``)."""
    address = address.strip().strip("<>").lower()
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        return ()
    base = local.split("+", 1)[0]
    return (address,) if base == local else (address, f"{base}@{domain}")


class Directory:
    """Maps envelope recipients to mailbox ids; database trouble is a temporary failure."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def lookup(self, address: str) -> int | None:
        """Mailbox id for an address, or None when no mailbox (that is not deleted) has it."""
        candidates = candidate_addresses(address)
        if not candidates:
            return None
        query = select(Mailbox.address, Mailbox.id).where(
            Mailbox.address.in_(candidates), Mailbox.status != MailboxStatus.DELETED.value
        )
        try:
            async with self._sessions() as session:
                found = dict((await session.execute(query)).all())
        except DB_UNAVAILABLE as exc:
            raise StoreUnavailable("mailbox directory unavailable") from exc
        for candidate in candidates:
            if candidate in found:
                return found[candidate]
        return None
