"""Recipient lookup for the doors: which mailbox (if any) answers for an address."""

from __future__ import annotations

import time

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
    """Maps envelope recipients to mailbox ids; database trouble is a temporary failure.

    Answers are cached for ``ttl`` seconds: at RCPT time a database round trip per recipient is
    most of an LMTP transaction's cost (docs/benchmarks.md). Only hits are cached, so a new
    mailbox is reachable at once; a deleted one may still be accepted for ``ttl`` seconds, and
    that mail is skipped by the pipeline, never answered.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[float, int]] = {}

    async def lookup(self, address: str) -> int | None:
        """Mailbox id for an address, or None when no mailbox (that is not deleted) has it."""
        key = address.strip().lower()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._lookup(address)
        # Only hits are cached: a miss answers 550 (a bounce), which must never be stale.
        if found is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, found)
        return found

    async def _lookup(self, address: str) -> int | None:
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
