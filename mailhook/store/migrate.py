"""Run Alembic migrations programmatically on an async engine (``mailhook migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` (default: every head, newest)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


def _current(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def pending_revisions(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied (empty when up to date)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    if set(current) == set(heads):
        return []
    return [rev.revision for rev in script.iterate_revisions(tuple(heads), current or "base")]
