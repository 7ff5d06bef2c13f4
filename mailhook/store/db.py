"""Engine and session factory shared by doors, workers, the API and the CLI.

SQLite (aiosqlite) is the single-box default; PostgreSQL (asyncpg) runs the same code. SQLite is
put in WAL mode with ``synchronous=FULL``: a ``250`` from a door promises the message survives a
crash and a power cut (DESIGN.md invariant 1), so the commit must reach the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: Database errors that mean "try again later", not "this input is bad".
DB_UNAVAILABLE = (OperationalError, InterfaceError, OSError, ConnectionError, TimeoutError)


def is_sqlite(url: str) -> bool:
    """True for SQLite URLs."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Durability and safety settings of every SQLite connection (the spool writer's too)."""
    # Take over transaction control from the driver so that we can BEGIN IMMEDIATE below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
        # Deleted rows are overwritten, so erased users' data is not left in free pages (GDPR).
        "PRAGMA secure_delete=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A deferred SQLite transaction that reads and then writes fails with SQLITE_BUSY (no wait)
    # when another connection wrote in between; taking the write lock up front makes
    # busy_timeout apply instead. Writers are serialised by SQLite anyway.
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine configured for ``url``'s backend."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


async def purge_freed_pages(engine: AsyncEngine) -> None:
    """After an erasure: on SQLite, move the WAL into the database and truncate it, so no old
    page image with erased data survives in ``-wal``. PostgreSQL reuses the space on VACUUM."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database:
        return
    # A connection of its own, not a pooled one: switching a pooled connection to AUTOCOMMIT
    # would hand it back to the pool with the driver's implicit transactions on.
    await asyncio.to_thread(_checkpoint, database)


def _checkpoint(database: str) -> None:
    connection = sqlite3.connect(database, timeout=10.0, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (we hand rows to other steps)."""
    return async_sessionmaker(engine, expire_on_commit=False)
