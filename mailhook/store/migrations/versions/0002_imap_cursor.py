"""IMAP door: per-account cursor and node lease; the IMAP UID of each spooled message

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailhook.store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = mailhook.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "imap_states",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _UTC(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("last_sync_at", _UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_imap_states_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_imap_states")),
    )
    op.create_table(
        "imap_messages",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["spool_jobs.id"], name=op.f("fk_imap_messages_job_id_spool_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_imap_messages_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_imap_messages")),
    )
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imap_messages_mailbox_id"), ["mailbox_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imap_messages_mailbox_id"))
    op.drop_table("imap_messages")
    op.drop_table("imap_states")
