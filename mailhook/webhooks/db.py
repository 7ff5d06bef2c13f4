"""Database helpers shared by the webhook fan-out, the dispatcher and the activity stream.

They poll (every second or faster), so their reads must not take SQLite's write lock: every
transaction of the main engine begins IMMEDIATE (store/db.py). On SQLite they get an engine of
their own whose connections stay in the driver's autocommit mode (no transaction, no lock); on
PostgreSQL they use the main engine with AUTOCOMMIT. (Switching a pooled SQLite connection to
AUTOCOMMIT and back would hand it to the pool with the driver's implicit transactions on again.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from mailhook.store.db import sqlite_pragmas


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine polling reads use: a lock-free one beside a SQLite ``engine``, else ``engine``."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine  # an in-memory database exists once per connection: share the main engine
    reader = create_async_engine(engine.url)
    event.listen(reader.sync_engine, "connect", sqlite_pragmas)
    return reader


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for polling reads from an engine made by :func:`read_engine`."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            yield conn  # the driver is in autocommit mode (sqlite_pragmas): each SELECT stands alone
        else:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT construct (both offer ``on_conflict_do_nothing``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert
