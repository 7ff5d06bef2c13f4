"""Alembic environment: runs on the connection mailhook hands in (see ``mailhook.store.migrate``)."""

from __future__ import annotations

from alembic import context

from mailhook.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic's own CLI against a URL
    raise RuntimeError("run migrations with `mailhook migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
