"""SQLAlchemy 2 models: metadata only, plus sealed (encrypted) bytes that are deleted when done.

No column holds a plain message body (DESIGN.md invariant 3). ``SpoolJob.sealed_raw``,
``Reply.sealed_message`` and ``OutboxMessage.sealed_message`` are Fernet tokens; the first two
are set to NULL as soon as their job or send is finished.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Primary keys are 32-bit on PostgreSQL; an id outside this range names nothing (and would
#: overflow the driver), so callers answer "not found" instead of asking the database.
MAX_ID = 2**31 - 1


def require_id(value: int, what: str) -> int:
    """``value`` if it can be an id, else :class:`~mailhook.errors.NotFound`."""
    from mailhook.errors import NotFound

    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no such {what}")
    return value


def utcnow() -> datetime:
    """Aware UTC now; every timestamp in the database is UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}


class MailboxStatus(enum.StrEnum):
    """Lifecycle of a mailbox."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    PENDING_BILLING = "pending_billing"
    ERROR = "error"
    DELETED = "deleted"


class OversightMode(enum.StrEnum):
    """How much a mailbox's agent may do on its own."""

    AUTONOMOUS = "autonomous"
    MONITORED = "monitored"
    GATED = "gated"
    DRAFT = "draft"


class JobStatus(enum.StrEnum):
    """Spool job states. ``dead`` is the dead-letter state."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class ReplyState(enum.StrEnum):
    """Where a reply is. ``sending`` is written *before* submission (see docs/reliability.md)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"
    HELD = "held"
    DRAFTED = "drafted"
    REJECTED = "rejected"
    FAILED = "failed"


class User(Base):
    """A mailbox owner."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    plan: Mapped[str] = mapped_column(String(32), default="free")
    free_credits: Mapped[int] = mapped_column(Integer, default=10)
    purchased_credits: Mapped[int] = mapped_column(Integer, default=0)
    subscription_credits: Mapped[int] = mapped_column(Integer, default=0)
    credits_used: Mapped[int] = mapped_column(Integer, default=0)
    subscription_status: Mapped[str] = mapped_column(String(32), default="")
    stripe_customer_id: Mapped[str] = mapped_column(String(255), default="")
    billing_notice_sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CreditGrant(Base):
    """Credits added to a user; ``source`` (a Stripe event id, or an admin note) is unique so a
    webhook delivered twice grants once."""

    __tablename__ = "credit_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeEvent(Base):
    """Stripe webhook events already handled (exactly-once processing)."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """The global unsubscribe list: agents never write to these addresses again.

    Only a SHA-256 of the normalised address is kept, so the list itself leaks no addresses.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginAttempt(Base):
    """Failed logins per key (hashed e-mail, and hashed client address) for rate limiting."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_time", "key", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mailbox(Base):
    """An address an agent answers for, with its configuration."""

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="hosted")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    imap_host: Mapped[str] = mapped_column(String(255), default="")
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    smtp_host: Mapped[str] = mapped_column(String(255), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=465)
    login: Mapped[str] = mapped_column(String(320), default="")
    password_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    poll_interval_minutes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32), default=MailboxStatus.ACTIVE.value)
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    mode: Mapped[str] = mapped_column(String(16), default=OversightMode.AUTONOMOUS.value)
    persona: Mapped[str] = mapped_column(Text, default="")
    tone: Mapped[str] = mapped_column(String(200), default="")
    rules: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text, default="")
    triggers: Mapped[list[str]] = mapped_column(JSON, default=list)
    documents: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    llm_provider: Mapped[str] = mapped_column(String(32), default="")
    llm_base_url: Mapped[str] = mapped_column(String(500), default="")
    llm_model: Mapped[str] = mapped_column(String(200), default="")
    llm_api_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reply_all: Mapped[bool] = mapped_column(Boolean, default=True)
    thread_depth: Mapped[int] = mapped_column(Integer, default=10)
    max_output_tokens: Mapped[int] = mapped_column(Integer, default=1000)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: ``mailhook`` (the built-in model answers) or ``api`` (a developer's agent, docs/agent-api.md).
    answered_by: Mapped[str] = mapped_column(String(16), default="mailhook", server_default="mailhook")


class SpoolJob(Base):
    """One accepted message for one mailbox, from acceptance until it is accounted for."""

    __tablename__ = "spool_jobs"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "content_hash", name="uq_spool_jobs_mailbox_content"),
        UniqueConstraint("mailbox_id", "message_id_hash", name="uq_spool_jobs_mailbox_msgid"),
        Index("ix_spool_jobs_claim", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    envelope_sender: Mapped[str] = mapped_column(String(320), default="")
    recipient: Mapped[str] = mapped_column(String(320))
    message_id_hash: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sealed_raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class OutgoingKind(enum.StrEnum):
    """What an outgoing message of a job is. Each kind exists at most once per job."""

    REPLY = "reply"
    ESCALATION = "escalation"
    BILLING_NOTICE = "billing_notice"
    MONITOR_COPY = "monitor_copy"
    APPROVAL_NOTICE = "approval_notice"


class Reply(Base):
    """An outgoing message of a job: the reply, or the owner's escalation notice.

    ``(job_id, kind)`` is unique: a job can never record two replies (invariant 2).
    """

    __tablename__ = "replies"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_replies_job_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("spool_jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default=OutgoingKind.REPLY.value)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    envelope_sender: Mapped[str] = mapped_column(String(320), default="")
    state: Mapped[str] = mapped_column(String(16), default=ReplyState.PENDING.value)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    sealed_message: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class OutboxMessage(Base):
    """The sandbox outbox: replies kept (sealed) and shown instead of sent."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"), unique=True)
    message_id: Mapped[str] = mapped_column(String(255))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    sealed_message: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """Metadata of what happened to a message: never its content."""

    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_rate", "mailbox_id", "action", "recipient", "created_at"),
        # A retried job cannot log (or be charged for) the same outcome twice.
        UniqueConstraint("job_id", "action", name="uq_activity_job_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("spool_jobs.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    message_id_hash: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AgentKey(Base):
    """A per-mailbox API key for agents (docs/agent-api.md): only a SHA-256 of it is kept.

    ``lookup`` is the first characters of the random part, indexed, to find the row; the hash is
    then compared in constant time. Revoking keeps the row so the audit trail can name the key.
    """

    __tablename__ = "agent_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    trust: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class AgentAudit(Base):
    """One agent action (REST or MCP): who, what, on which id, how it ended. Never content."""

    __tablename__ = "agent_audit"
    __table_args__ = (Index("ix_agent_audit_mailbox_time", "mailbox_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("agent_keys.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentInboxItem(Base):
    """A message waiting for a mailbox's own agent (``answered_by = api``).

    What the agent reads (headers, the sanitised text) is sealed in ``sealed``, the raw message
    (to reply: recipients and threading) in ``sealed_raw``; in clear only metadata: score, rule
    ids, size, fingerprints of the thread's Message-IDs.
    """

    __tablename__ = "agent_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("spool_jobs.id", ondelete="SET NULL"), unique=True)
    message_id_hash: Mapped[str | None] = mapped_column(String(64))
    thread_hashes: Mapped[list[str]] = mapped_column(JSON, default=list)
    threat_score: Mapped[int] = mapped_column(Integer, default=0)
    threat_rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer, default=0)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AgentSend(Base):
    """Which key wrote an outgoing message sent through the agent API (its job's reply)."""

    __tablename__ = "agent_sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("spool_jobs.id", ondelete="CASCADE"), unique=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("agent_keys.id", ondelete="SET NULL"))
    inbox_item_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImapState(Base):
    """The IMAP door's per-account state: the cursor and the node lease (doors/imap).

    The cursor (``uidvalidity``, ``last_uid``) moves only after the spool committed the message
    with that UID; ``lease_owner`` is the spool node name of the node watching the account.
    """

    __tablename__ = "imap_states"

    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_sync_at: Mapped[datetime | None] = mapped_column()


class ImapMessage(Base):
    """Which IMAP message (UIDVALIDITY, UID) a spool job came from, to flag it on escalation."""

    __tablename__ = "imap_messages"

    job_id: Mapped[int] = mapped_column(ForeignKey("spool_jobs.id", ondelete="CASCADE"), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)


class WebhookEndpoint(Base):
    """A URL a user wants signed event notifications at (docs/webhooks.md).

    The signing secret is shown once and kept sealed. ``cursor_activity_id`` is how far the
    fan-out has read the activity log for this endpoint (it only moves forward).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor_activity_id: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint, from fan-out until delivered or given up (metadata only).

    ``(endpoint_id, activity_id, event)`` is unique, so a fan-out repeated by another node or
    after a restart cannot queue an event twice.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "activity_id", "event", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    activity_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
