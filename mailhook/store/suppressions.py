"""The global unsubscribe list and the signed one-click unsubscribe links (RFC 8058).

Only SHA-256 digests of normalised addresses are stored. A link carries the address
(base64url) and an HMAC over it, so nobody can unsubscribe someone else without the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import NotFound
from mailhook.mail.addresses import normalize_address
from mailhook.store.models import Suppression


def address_hash(address: str) -> str:
    """Digest of a normalised address."""
    return hashlib.sha256(normalize_address(address).encode()).hexdigest()


class UnsubscribeLinks:
    """Make and check unsubscribe tokens."""

    def __init__(self, secret: str, public_url: str) -> None:
        self._key = hashlib.sha256(b"mailhook-unsubscribe:" + secret.encode()).digest()
        self._base = public_url.rstrip("/")

    def _sign(self, address: str) -> str:
        mac = hmac.digest(self._key, address.encode(), "sha256")[:16]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def token(self, address: str) -> str:
        """``<base64url address>.<mac>``."""
        normal = normalize_address(address)
        encoded = base64.urlsafe_b64encode(normal.encode()).decode().rstrip("=")
        return f"{encoded}.{self._sign(normal)}"

    def url(self, address: str) -> str:
        """The public one-click URL for an address."""
        return f"{self._base}/u/{self.token(address)}"

    def address(self, token: str) -> str:
        """The address a valid token names; :class:`NotFound` for anything else."""
        encoded, _, mac = token.partition(".")
        if not encoded or not mac or len(token) > 1000:
            raise NotFound("unknown unsubscribe link")
        try:
            address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise NotFound("unknown unsubscribe link") from None
        # Bytes: compare_digest refuses str with non-ASCII characters (TypeError), and a link's
        # text is whatever a visitor typed.
        if not hmac.compare_digest(self._sign(address).encode(), mac.encode("utf-8", "replace")):
            raise NotFound("unknown unsubscribe link")
        return address


class Suppressions:
    """Add to and check the global unsubscribe list."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, address: str) -> None:
        """Suppress an address (idempotent)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(Suppression(address_hash=address_hash(address)))
        except IntegrityError:
            return

    async def contains(self, address: str) -> bool:
        """True when the address unsubscribed."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(Suppression.id).where(Suppression.address_hash == address_hash(address))
            )
        return found is not None
