"""agent API: per-mailbox keys, audit trail, agent inbox, API sends; mailboxes.answered_by

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailhook.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UTC = mailhook.store.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("answered_by", sa.String(length=16), nullable=False, server_default="mailhook")
        )

    op.create_table(
        "agent_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("trust", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("last_used_at", _UTC(timezone=True), nullable=True),
        sa.Column("revoked_at", _UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_agent_keys_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_keys")),
        sa.UniqueConstraint("lookup", name=op.f("uq_agent_keys_lookup")),
    )
    with op.batch_alter_table("agent_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_keys_mailbox_id"), ["mailbox_id"], unique=False)

    op.create_table(
        "agent_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["agent_keys.id"], name=op.f("fk_agent_audit_key_id_agent_keys"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_agent_audit_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_audit")),
    )
    with op.batch_alter_table("agent_audit", schema=None) as batch_op:
        batch_op.create_index("ix_agent_audit_mailbox_time", ["mailbox_id", "created_at"], unique=False)

    op.create_table(
        "agent_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("message_id_hash", sa.String(length=64), nullable=True),
        sa.Column("thread_hashes", sa.JSON(), nullable=False),
        sa.Column("threat_score", sa.Integer(), nullable=False),
        sa.Column("threat_rules", sa.JSON(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", _UTC(timezone=True), nullable=False),
        sa.Column("expires_at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["spool_jobs.id"], name=op.f("fk_agent_inbox_job_id_spool_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_agent_inbox_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_inbox")),
        sa.UniqueConstraint("job_id", name=op.f("uq_agent_inbox_job_id")),
    )
    with op.batch_alter_table("agent_inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_inbox_mailbox_id"), ["mailbox_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_inbox_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "agent_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("inbox_item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["spool_jobs.id"], name=op.f("fk_agent_sends_job_id_spool_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["agent_keys.id"], name=op.f("fk_agent_sends_key_id_agent_keys"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_agent_sends_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sends")),
        sa.UniqueConstraint("job_id", name=op.f("uq_agent_sends_job_id")),
    )
    with op.batch_alter_table("agent_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_sends_mailbox_id"), ["mailbox_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agent_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_sends_mailbox_id"))
    op.drop_table("agent_sends")
    with op.batch_alter_table("agent_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_inbox_expires_at"))
        batch_op.drop_index(batch_op.f("ix_agent_inbox_mailbox_id"))
    op.drop_table("agent_inbox")
    with op.batch_alter_table("agent_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_audit_mailbox_time")
    op.drop_table("agent_audit")
    with op.batch_alter_table("agent_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_keys_mailbox_id"))
    op.drop_table("agent_keys")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_column("answered_by")
