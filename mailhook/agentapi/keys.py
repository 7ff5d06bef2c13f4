"""Per-mailbox API keys: ``mh_live_<random>`` / ``mh_test_<random>``, shown once, stored hashed.

The random part is 32 bytes from :mod:`secrets` (256 bits, URL-safe base64). Its first
:data:`LOOKUP_CHARS` characters are stored in clear and indexed to find the row; the whole key's
SHA-256 is stored and compared with :func:`hmac.compare_digest`. A fast hash is enough here: the
key is high-entropy, so there is nothing to brute-force (unlike passwords, which get argon2).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from mailhook.store.models import (
    AgentKey,
    Mailbox,
    MailboxStatus,
    OversightMode,
    User,
    require_id,
    utcnow,
)

LIVE_PREFIX: Final = "mh_live_"
TEST_PREFIX: Final = "mh_test_"
LOOKUP_CHARS: Final = 16
#: Characters of the random part shown in listings, enough to recognise a key, useless to use it.
SHOWN_CHARS: Final = 6
_KEY = re.compile(r"mh_(live|test)_([A-Za-z0-9_-]{43})")
MAX_KEYS_PER_MAILBOX: Final = 50
MAX_NAME_CHARS: Final = 100
#: ``last_used_at`` is refreshed at most this often (one write per request would be wasteful).
_TOUCH_EVERY = timedelta(minutes=1)


class Scope(enum.StrEnum):
    """What a key may do: ``agent`` primitives, or also decide pending mail (``owner``)."""

    AGENT = "agent"
    OWNER = "owner"


@dataclass(frozen=True)
class Principal:
    """The key behind a request, and the one mailbox it acts for."""

    key_id: int
    key_name: str
    mailbox_id: int
    mailbox_address: str
    owner_id: int
    test: bool
    trust: OversightMode
    scope: Scope


@dataclass(frozen=True)
class KeyInfo:
    """A key as its owner sees it: never the key itself."""

    id: int
    name: str
    prefix: str
    test: bool
    trust: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown this once and never stored."""

    info: KeyInfo
    key: str


def key_hash(key: str) -> str:
    """Hex SHA-256 of the whole key."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def looks_like_key(token: str) -> bool:
    """True for something shaped like an agent key (a JWT is not)."""
    return _KEY.fullmatch(token) is not None


def _info(row: AgentKey) -> KeyInfo:
    prefix = (TEST_PREFIX if row.test else LIVE_PREFIX) + row.lookup[:SHOWN_CHARS]
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=prefix,
        test=row.test,
        trust=row.trust,
        scope=row.scope,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _clean_choice(field: str, value: str, choices: type[enum.StrEnum]) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise ValidationFailed(f"{field} must be one of {', '.join(allowed)}")
    return value


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
        raise ValidationFailed(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


class AgentKeys:
    """Create, list and revoke keys (owners); authenticate them (agents)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _owned_mailbox(self, session: AsyncSession, owner: User, mailbox_id: int) -> Mailbox:
        require_id(mailbox_id, "mailbox")
        mailbox = await session.scalar(
            select(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.owner_id == owner.id)
        )
        if mailbox is None:
            raise NotFound("no such mailbox")
        return mailbox

    async def create(
        self, owner: User, mailbox_id: int, *, name: str, test: bool, trust: str, scope: str
    ) -> NewKey:
        """A new key for one of the owner's mailboxes."""
        row = AgentKey(
            name=_clean_name(name),
            test=test,
            trust=_clean_choice("trust", trust, OversightMode),
            scope=_clean_choice("scope", scope, Scope),
        )
        for _ in range(3):
            random_part = secrets.token_urlsafe(32)
            key = (TEST_PREFIX if test else LIVE_PREFIX) + random_part
            row.lookup, row.secret_hash = random_part[:LOOKUP_CHARS], key_hash(key)
            try:
                async with self._sessions() as session, session.begin():
                    mailbox = await self._owned_mailbox(session, owner, mailbox_id)
                    if mailbox.status == MailboxStatus.DELETED.value:
                        raise Conflict("mailbox is deleted")
                    count = await session.scalar(
                        select(func.count()).where(
                            AgentKey.mailbox_id == mailbox.id, AgentKey.revoked_at.is_(None)
                        )
                    )
                    if (count or 0) >= MAX_KEYS_PER_MAILBOX:
                        raise Conflict(f"a mailbox can have at most {MAX_KEYS_PER_MAILBOX} active keys")
                    row.mailbox_id = mailbox.id
                    session.add(row)
            except IntegrityError:  # a 96-bit lookup collision: astronomically rare, just retry
                row = AgentKey(name=row.name, test=row.test, trust=row.trust, scope=row.scope)
                continue
            return NewKey(_info(row), key)
        raise Conflict("could not create a unique key; try again")

    async def list(self, owner: User, mailbox_id: int) -> list[KeyInfo]:
        """Every key of the mailbox, revoked ones included, oldest first."""
        async with self._sessions() as session:
            mailbox = await self._owned_mailbox(session, owner, mailbox_id)
            rows = await session.scalars(
                select(AgentKey).where(AgentKey.mailbox_id == mailbox.id).order_by(AgentKey.id)
            )
            return [_info(row) for row in rows.all()]

    async def revoke(self, owner: User, mailbox_id: int, key_id: int) -> None:
        """Revoke at once (idempotent); the row stays for the audit trail."""
        require_id(key_id, "key")
        async with self._sessions() as session, session.begin():
            mailbox = await self._owned_mailbox(session, owner, mailbox_id)
            row = await session.scalar(
                select(AgentKey).where(AgentKey.id == key_id, AgentKey.mailbox_id == mailbox.id)
            )
            if row is None:
                raise NotFound("no such key")
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid, unrevoked key of a mailbox that is not deleted."""
        match = _KEY.fullmatch(token)
        if match is None:
            raise Unauthorized("invalid API key")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(AgentKey, Mailbox)
                    .join(Mailbox, Mailbox.id == AgentKey.mailbox_id)
                    .where(AgentKey.lookup == match.group(2)[:LOOKUP_CHARS])
                )
            ).first()
        if found is None:
            raise Unauthorized("invalid API key")
        row, mailbox = found
        valid = hmac.compare_digest(key_hash(token), row.secret_hash)
        if (
            not valid
            or row.test != (match.group(1) == "test")
            or row.revoked_at is not None
            or mailbox.status == MailboxStatus.DELETED.value
        ):
            raise Unauthorized("invalid API key")
        await self._touch(row)
        return Principal(
            key_id=row.id,
            key_name=row.name,
            mailbox_id=mailbox.id,
            mailbox_address=mailbox.address,
            owner_id=mailbox.owner_id,
            test=row.test,
            trust=OversightMode(row.trust),
            scope=Scope(row.scope),
        )

    async def _touch(self, row: AgentKey) -> None:
        now = utcnow()
        if row.last_used_at is not None and now - row.last_used_at < _TOUCH_EVERY:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(update(AgentKey).where(AgentKey.id == row.id).values(last_used_at=now))
