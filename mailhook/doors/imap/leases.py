"""Which node watches which external account: leases in the database (DESIGN.md "Scale").

Every account has one ``imap_states`` row. A node claims a row with one conditional
``UPDATE … WHERE lease is free, expired or already ours … RETURNING``: the database decides, so
two nodes can never both win a lease, on SQLite (one writer at a time) as on PostgreSQL (the
second UPDATE waits for the first and re-checks the condition under READ COMMITTED). A node
renews its leases every third of ``imap.lease_seconds``; one that dies stops renewing and its
accounts are taken over once the leases expire. No lock is held between statements.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.store.models import ImapState, Mailbox, MailboxStatus, utcnow


@dataclass(frozen=True)
class Watched:
    """An account a node should watch, with what restarts its watcher when it changes."""

    mailbox_id: int
    fingerprint: tuple[object, ...]


def watchable() -> ColumnElement[bool]:
    """External mailboxes with credentials that are not deleted.

    Paused ones too: like the LMTP door, the IMAP door takes their mail in and the pipeline
    records it as ``skipped`` (docs/api.md, status lifecycle), so resuming a mailbox does not
    answer everything that arrived during the pause. A mailbox paused by a refused login is
    retried this way, and wakes up once the login works again.
    """
    return and_(
        Mailbox.kind == "external",
        Mailbox.password_sealed.is_not(None),
        Mailbox.status != MailboxStatus.DELETED.value,
    )


class Leases:
    """Claim, renew and release account leases for one node."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], node: str, lease_seconds: float) -> None:
        self._sessions = sessions
        self.node = node
        self._lease = timedelta(seconds=lease_seconds)

    async def watchable(self) -> dict[int, Watched]:
        """Every account some node should watch, by mailbox id (rows created as needed)."""
        query = select(
            Mailbox.id,
            Mailbox.imap_host,
            Mailbox.imap_port,
            Mailbox.login,
            Mailbox.password_sealed,
            Mailbox.poll_interval_minutes,
        ).where(watchable())
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            known = set((await session.scalars(select(ImapState.mailbox_id))).all())
        found = {row[0]: Watched(row[0], tuple(row[1:])) for row in rows}
        missing = [mailbox_id for mailbox_id in found if mailbox_id not in known]
        if missing:
            await self._create_rows(missing)
        return found

    async def _create_rows(self, mailbox_ids: list[int]) -> None:
        async with self._sessions() as session, session.begin():
            insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            rows = [
                {"mailbox_id": mailbox_id, "last_uid": 0, "failures": 0, "last_error": ""}
                for mailbox_id in mailbox_ids
            ]
            await session.execute(insert(ImapState).values(rows).on_conflict_do_nothing())

    async def claim(self, candidates: Collection[int], limit: int) -> set[int]:
        """Take up to ``limit`` of ``candidates`` whose lease is free or expired."""
        if not candidates or limit <= 0:
            return set()
        now = utcnow()
        free = or_(
            ImapState.lease_owner.is_(None), ImapState.lease_until < now, ImapState.lease_owner == self.node
        )
        async with self._sessions() as session, session.begin():
            open_ids = list(
                (
                    await session.scalars(
                        select(ImapState.mailbox_id)
                        .where(ImapState.mailbox_id.in_(list(candidates)), free)
                        .order_by(ImapState.lease_until.is_not(None), ImapState.mailbox_id)
                        .limit(limit)
                    )
                ).all()
            )
            if not open_ids:
                return set()
            # The condition is repeated in the UPDATE: that, not the SELECT, decides who wins.
            won = await session.scalars(
                update(ImapState)
                .where(ImapState.mailbox_id.in_(open_ids), free)
                .values(lease_owner=self.node, lease_until=now + self._lease)
                .returning(ImapState.mailbox_id)
                .execution_options(synchronize_session=False)
            )
            return set(won.all())

    async def renew(self, held: Collection[int]) -> set[int]:
        """Extend our leases; returns those still ours (a lease that expired may be lost)."""
        if not held:
            return set()
        now = utcnow()
        async with self._sessions() as session, session.begin():
            kept = await session.scalars(
                update(ImapState)
                .where(ImapState.mailbox_id.in_(list(held)), ImapState.lease_owner == self.node)
                .values(lease_until=now + self._lease)
                .returning(ImapState.mailbox_id)
                .execution_options(synchronize_session=False)
            )
            return set(kept.all())

    async def release(self, mailbox_ids: Collection[int] | None = None) -> None:
        """Give leases back (all of this node's when ``mailbox_ids`` is None), e.g. at shutdown."""
        query = update(ImapState).where(ImapState.lease_owner == self.node)
        if mailbox_ids is not None:
            if not mailbox_ids:
                return
            query = query.where(ImapState.mailbox_id.in_(list(mailbox_ids)))
        async with self._sessions() as session, session.begin():
            await session.execute(query.values(lease_owner=None, lease_until=None))

    async def owner_of(self, mailbox_id: int) -> str | None:
        """The node holding an unexpired lease on the account (for tests and the CLI)."""
        async with self._sessions() as session:
            state = await session.get(ImapState, mailbox_id)
        if state is None or state.lease_until is None or state.lease_until < utcnow():
            return None
        return state.lease_owner
