"""Users and mailboxes: the small service the CLI (and later the API) create them through."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import Conflict, NotFound, ValidationFailed
from mailhook.store.models import Mailbox, OversightMode, User

_HASHER = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s<>]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


def hash_password(password: str) -> str:
    """Argon2id hash."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Constant-time check (argon2 compares in constant time)."""
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def clean_email(address: str) -> str:
    """Lower-cased address, or :class:`ValidationFailed` saying what is wrong."""
    address = address.strip().lower()
    if not _EMAIL.match(address):
        raise ValidationFailed(f"not an e-mail address: {address[:80]!r}")
    return address


def check_password(password: str) -> None:
    """Length rules only (NIST SP 800-63B): at least 10, at most 1,024 characters."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(f"password must be at most {MAX_PASSWORD} characters")


class Accounts:
    """Create and find users and mailboxes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_user(
        self, email: str, password: str, *, is_admin: bool = False, free_credits: int = 10
    ) -> User:
        """A new user; :class:`Conflict` if the address is taken."""
        email = clean_email(email)
        check_password(password)
        user = User(
            email=email, password_hash=hash_password(password), is_admin=is_admin, free_credits=free_credits
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(user)
        except IntegrityError:
            raise Conflict(f"a user with e-mail {email} already exists") from None
        return user

    async def user_by_email(self, email: str) -> User:
        """The user with this address, or :class:`NotFound`."""
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.email == clean_email(email)))
        if user is None:
            raise NotFound(f"no user {email}")
        return user

    async def add_mailbox(
        self,
        owner_email: str,
        address: str,
        *,
        mode: str = OversightMode.AUTONOMOUS.value,
        persona: str = "",
        display_name: str = "",
    ) -> Mailbox:
        """A new active hosted mailbox for an existing user."""
        owner = await self.user_by_email(owner_email)
        address = clean_email(address)
        if mode not in {m.value for m in OversightMode}:
            raise ValidationFailed(f"mode must be one of {', '.join(m.value for m in OversightMode)}")
        mailbox = Mailbox(
            owner_id=owner.id,
            address=address,
            mode=mode,
            persona=persona,
            display_name=display_name,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(mailbox)
        except IntegrityError:
            raise Conflict(f"mailbox {address} already exists") from None
        return mailbox
