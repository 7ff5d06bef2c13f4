"""The IMAP door's durable state: the per-account cursor, its errors, and the mailbox status.

The cursor is ``(uidvalidity, last_uid)`` (RFC 3501 §2.3.1.1): UIDs only mean something together
with the folder's UIDVALIDITY. ``last_uid`` moves forward only, and only after the spool
committed the message with that UID (DESIGN.md invariant 1), so a crash between the commit and
the cursor update makes the door fetch the message again, and the spool's dedup drops it.

A refused login pauses the mailbox (``inactive``) with a reason that starts with
:data:`LOGIN_FAILED`, a host that leads to a private address (SSRF check, docs/imap.md) with
:data:`HOST_REFUSED`; only a mailbox paused one of these ways is woken again by a later
successful login. A mailbox the owner paused keeps any other reason and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.store.models import ImapMessage, ImapState, Mailbox, MailboxStatus, utcnow

#: Prefix of ``status_reason`` for a mailbox paused because its IMAP login was refused.
LOGIN_FAILED = "IMAP login failed"
#: Prefix of ``status_reason`` for a mailbox paused because its IMAP host may not be reached.
HOST_REFUSED = "IMAP host refused"
#: The pauses the door makes itself, and lifts when a login works.
DOOR_PAUSES = (LOGIN_FAILED, HOST_REFUSED)


@dataclass(frozen=True)
class Cursor:
    """Where an account's INBOX was read up to."""

    uidvalidity: int | None
    last_uid: int


class ImapStates:
    """Reads and moves cursors; records errors; pauses and wakes mailboxes on login results."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def cursor(self, mailbox_id: int) -> Cursor:
        """The stored cursor (an account never synced has none)."""
        async with self._sessions() as session:
            state = await session.get(ImapState, mailbox_id)
        if state is None:
            return Cursor(None, 0)
        return Cursor(state.uidvalidity, state.last_uid)

    async def reset(self, mailbox_id: int, uidvalidity: int, last_uid: int) -> None:
        """Start over under a new UIDVALIDITY (first sync, or the server renumbered the folder)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(ImapState)
                .where(ImapState.mailbox_id == mailbox_id)
                .values(uidvalidity=uidvalidity, last_uid=last_uid, last_sync_at=utcnow())
            )

    async def advance(self, mailbox_id: int, uidvalidity: int, uid: int) -> None:
        """Move the cursor past ``uid``, never backwards and never under another UIDVALIDITY."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(ImapState)
                .where(
                    ImapState.mailbox_id == mailbox_id,
                    ImapState.uidvalidity == uidvalidity,
                    ImapState.last_uid < uid,
                )
                .values(last_uid=uid, last_sync_at=utcnow())
            )

    async def remember(self, mailbox_id: int, uidvalidity: int, uid: int, job_id: int) -> None:
        """Which message a job came from (to flag it on escalation); the first record wins."""
        async with self._sessions() as session, session.begin():
            if await session.get(ImapMessage, job_id) is None:
                session.add(
                    ImapMessage(job_id=job_id, mailbox_id=mailbox_id, uidvalidity=uidvalidity, uid=uid)
                )

    async def synced(self, mailbox_id: int) -> None:
        """A sync finished: clear the error count."""
        await self._set(mailbox_id, failures=0, last_error="", last_sync_at=utcnow())

    async def failed(self, mailbox_id: int, error: str) -> None:
        """A connection or login failed: count it and keep the reason (no credentials in it)."""
        await self._set(mailbox_id, failures=ImapState.failures + 1, last_error=error[:500])

    async def _set(self, mailbox_id: int, **values: object) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(ImapState).where(ImapState.mailbox_id == mailbox_id).values(**values)
            )

    async def pause_for_login(self, mailbox_id: int, reason: str, *, prefix: str = LOGIN_FAILED) -> bool:
        """``active → inactive`` with the reason (one of :data:`DOOR_PAUSES` first); False if
        the mailbox was not active."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id, Mailbox.status == MailboxStatus.ACTIVE.value)
                .values(
                    status=MailboxStatus.INACTIVE.value,
                    status_reason=f"{prefix}: {reason}"[:500],
                    updated_at=utcnow(),
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def wake_after_login(self, mailbox_id: int) -> bool:
        """``inactive → active`` only when the pause was ours (a refused login or host)."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id, paused_for_login())
                .values(status=MailboxStatus.ACTIVE.value, status_reason="", updated_at=utcnow())
            )
        return bool(getattr(result, "rowcount", 0))

    async def message_uid(self, job_id: int) -> tuple[int, int] | None:
        """(UIDVALIDITY, UID) of the IMAP message a job came from."""
        async with self._sessions() as session:
            row = await session.get(ImapMessage, job_id)
        return (row.uidvalidity, row.uid) if row is not None else None


def paused_for_login() -> ColumnElement[bool]:
    """SQL condition: the door paused the mailbox (its IMAP login or host was refused)."""
    return and_(
        Mailbox.status == MailboxStatus.INACTIVE.value,
        or_(*(func.substr(Mailbox.status_reason, 1, len(prefix)) == prefix for prefix in DOOR_PAUSES)),
    )


def paused_by_door(status: str, reason: str) -> bool:
    """:func:`paused_for_login` for a mailbox already read."""
    return status == MailboxStatus.INACTIVE.value and reason.startswith(DOOR_PAUSES)
