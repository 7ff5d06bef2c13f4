"""GDPR erasure of a user: every row that belongs to them and every file under the data dir.

Rows go by ``ON DELETE CASCADE`` from ``users`` (mailboxes, spool jobs with their sealed raw
messages, replies and held replies, the sandbox outbox, activity, credit grants); the login
attempts are keyed by a hash of the e-mail and are deleted explicitly; persona history lives in
one git repository per mailbox under ``<data_dir>/personas/<mailbox id>`` and is removed.
SQLite overwrites deleted rows (``secure_delete``) and the WAL is truncated afterwards, so the
bytes are gone from the database files too.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.errors import NotFound
from mailhook.store.db import purge_freed_pages
from mailhook.store.login_limits import LoginLimiter
from mailhook.store.models import Mailbox, User


def persona_dir(data_dir: Path, mailbox_id: int) -> Path:
    """Where a mailbox's persona history repository lives."""
    return data_dir / "personas" / str(mailbox_id)


async def erase_user(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], data_dir: Path, user_id: int
) -> int:
    """Erase a user completely; returns how many mailboxes went with them."""
    async with sessions() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        email = user.email
        mailbox_ids = list(
            (await session.scalars(select(Mailbox.id).where(Mailbox.owner_id == user_id))).all()
        )
        await session.execute(delete(User).where(User.id == user_id))
    await LoginLimiter(sessions).forget(email)
    for mailbox_id in mailbox_ids:
        await asyncio.to_thread(shutil.rmtree, persona_dir(data_dir, mailbox_id), True)
    await purge_freed_pages(engine)
    return len(mailbox_ids)
