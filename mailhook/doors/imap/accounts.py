"""An external mailbox's servers and credentials, read fresh from the database on every use.

The password is opened with the installation's Fernet keys only here, right before a login, and
lives in memory only for that connection (DESIGN.md invariant 3: never logged, never returned).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.doors.imap.state import paused_by_door
from mailhook.store.models import Mailbox, MailboxStatus
from mailhook.store.servers import ExternalAccount

#: Gmail files every message sent through its SMTP into "Sent Mail" by itself; an APPEND
#: would show the reply twice there.
SERVERS_FILING_SENT = frozenset({"imap.gmail.com", "imap.googlemail.com"})


@dataclass(frozen=True, kw_only=True, repr=False)
class OpenedAccount(ExternalAccount):
    """An external mailbox's account with its password opened, for one connection."""

    mailbox_id: int
    #: Paused by the door after a refused login or host (a working login wakes it).
    paused_for_login: bool = False

    def __repr__(self) -> str:
        # Never let a password reach a log line or a traceback through repr().
        return f"OpenedAccount(mailbox_id={self.mailbox_id}, address={self.address!r})"

    @property
    def files_sent_itself(self) -> bool:
        """True when the provider stores SMTP-submitted mail in Sent on its own."""
        return self.imap_host.lower() in SERVERS_FILING_SENT


class ExternalAccounts:
    """Looks up external mailboxes and opens their sealed passwords."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
        self._sessions = sessions
        self._sealer = sealer

    async def get(self, mailbox_id: int) -> OpenedAccount | None:
        """The account of an external, not deleted mailbox with credentials; else None."""
        async with self._sessions() as session:
            mailbox = await session.scalar(select(Mailbox).where(Mailbox.id == mailbox_id))
        if mailbox is None or not is_external(mailbox) or mailbox.password_sealed is None:
            return None
        return OpenedAccount.of(
            mailbox,
            mailbox_id=mailbox.id,
            password=self._sealer.open(mailbox.password_sealed).decode("utf-8"),
            paused_for_login=paused_by_door(mailbox.status, mailbox.status_reason),
        )


def is_external(mailbox: Mailbox) -> bool:
    """An external mailbox that still exists."""
    return mailbox.kind == "external" and mailbox.status != MailboxStatus.DELETED.value
