"""The audit trail of agent actions: key, mailbox, action, target id, outcome, time.

Never a body, a subject or an address: the trail says who did what to which id, and how it
ended, so an owner can review what a key did without the trail becoming a copy of the mail.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.agentapi.keys import Principal
from mailhook.errors import MailhookError, NotFound, ValidationFailed
from mailhook.logs import get_logger
from mailhook.store.models import AgentAudit, AgentKey, Mailbox, User, require_id

log = get_logger(__name__)

MAX_PAGE_SIZE: Final = 200
MAX_PAGE: Final = 1_000_000


@dataclass
class AuditEntry:
    """One agent action as the owner sees it."""

    id: int
    key_id: int | None
    key_name: str
    channel: str
    action: str
    target_id: int | None
    outcome: str
    created_at: datetime


@dataclass
class AuditPage:
    """``{items, total, page, size, pages}``, newest first."""

    items: list[AuditEntry]
    total: int
    page: int
    size: int
    pages: int


@dataclass
class Outcome:
    """What the audited block sets to say how it ended (``ok`` unless told otherwise)."""

    value: str = "ok"
    target_id: int | None = None


class AuditTrail:
    """Writes and pages the trail."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self, principal: Principal, channel: str, action: str, target_id: int | None, outcome: str
    ) -> None:
        """Append one entry."""
        async with self._sessions() as session, session.begin():
            session.add(
                AgentAudit(
                    mailbox_id=principal.mailbox_id,
                    key_id=principal.key_id,
                    channel=channel[:8],
                    action=action[:32],
                    target_id=target_id if target_id is not None and 0 < target_id < 2**31 else None,
                    outcome=outcome[:64],
                )
            )

    @asynccontextmanager
    async def action(
        self, principal: Principal, channel: str, action: str, target_id: int | None = None
    ) -> AsyncIterator[Outcome]:
        """Audit the block: its outcome, or the error type it raised (the error still raises)."""
        outcome = Outcome(target_id=target_id)
        try:
            yield outcome
        except MailhookError as exc:
            await self.record(principal, channel, action, outcome.target_id, type(exc).__name__)
            raise
        except Exception as exc:
            await self.record(principal, channel, action, outcome.target_id, "InternalError")
            log.warning("agent_action_failed", action=action, error=type(exc).__name__)
            raise
        await self.record(principal, channel, action, outcome.target_id, outcome.value)

    async def page(self, owner: User, mailbox_id: int, *, page: int = 1, size: int = 50) -> AuditPage:
        """One page of a mailbox's trail (someone else's mailbox is a 404)."""
        require_id(mailbox_id, "mailbox")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= page <= MAX_PAGE:
            raise ValidationFailed(f"page must be between 1 and {MAX_PAGE:,}")
        async with self._sessions() as session:
            owned = await session.scalar(
                select(Mailbox.id).where(Mailbox.id == mailbox_id, Mailbox.owner_id == owner.id)
            )
            if owned is None:
                raise NotFound("no such mailbox")
            total = int(
                await session.scalar(select(func.count()).where(AgentAudit.mailbox_id == mailbox_id)) or 0
            )
            rows = await session.execute(
                select(AgentAudit, AgentKey.name)
                .outerjoin(AgentKey, AgentKey.id == AgentAudit.key_id)
                .where(AgentAudit.mailbox_id == mailbox_id)
                .order_by(AgentAudit.created_at.desc(), AgentAudit.id.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
            items = [
                AuditEntry(
                    a.id, a.key_id, name or "", a.channel, a.action, a.target_id, a.outcome, a.created_at
                )
                for a, name in rows.all()
            ]
        return AuditPage(items, total, page, size, math.ceil(total / size))
