"""Login rate limiting, shared by every node through the database.

Failed attempts are counted per hashed e-mail and per hashed client address in a sliding
window; a success clears the e-mail's count. Keys are hashes so the table holds no addresses.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import RateLimited
from mailhook.store.models import LoginAttempt, utcnow

WINDOW = timedelta(minutes=15)
MAX_PER_EMAIL = 5
MAX_PER_CLIENT = 30


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


class LoginLimiter:
    """Check before verifying a password; record failures; clear on success."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def check(self, email: str, client: str) -> None:
        """Raise :class:`RateLimited` when either key is over its limit."""
        since = utcnow() - WINDOW
        async with self._sessions() as session:
            for key, limit in (
                (_key("email", email), MAX_PER_EMAIL),
                (_key("client", client), MAX_PER_CLIENT),
            ):
                count = await session.scalar(
                    select(func.count()).where(LoginAttempt.key == key, LoginAttempt.created_at >= since)
                )
                if (count or 0) >= limit:
                    raise RateLimited("too many failed logins; try again in 15 minutes")

    async def failed(self, email: str, client: str) -> None:
        """Count a failure for both keys."""
        async with self._sessions() as session, session.begin():
            session.add_all(
                [LoginAttempt(key=_key("email", email)), LoginAttempt(key=_key("client", client))]
            )

    async def succeeded(self, email: str) -> None:
        """Forget the e-mail's failures (the client's stay until they age out)."""
        await self.forget(email)

    async def forget(self, email: str) -> None:
        """Delete every attempt recorded for an e-mail (also used by account erasure)."""
        async with self._sessions() as session, session.begin():
            await session.execute(delete(LoginAttempt).where(LoginAttempt.key == _key("email", email)))
