"""The activity log: what happened to each message, as metadata only (never content)."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.store.models import Activity, utcnow


class ActivityAction(enum.StrEnum):
    """Every action the activity log knows."""

    REPLIED = "replied"
    DRAFTED = "drafted"
    ESCALATED = "escalated"
    NO_ACTION = "no_action"
    SKIPPED = "skipped"
    QUEUED = "queued"
    APPROVED = "approved"
    REJECTED = "rejected"
    TESTED_PERSONA = "tested_persona"
    HANDED_TO_AGENT = "handed_to_agent"  # answered_by = api: waiting in the agent inbox
    QUARANTINED = "quarantined"  # held in the MTA's hold queue by the milter door
    BOUNCED = "bounced"  # a delivery status notification (RFC 3464) arrived; nothing is sent
    ERROR = "error"


class ActivityLog:
    """Writes and counts activity rows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self,
        mailbox_id: int,
        action: ActivityAction,
        *,
        job_id: int | None = None,
        recipient: str = "",
        reason: str = "",
        message_id_hash: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Append one row; False when this job already logged this action (a retried job)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    Activity(
                        mailbox_id=mailbox_id,
                        job_id=job_id,
                        action=action.value,
                        recipient=recipient[:320],
                        reason=reason[:500],
                        message_id_hash=message_id_hash,
                        detail=detail or {},
                    )
                )
        except IntegrityError:
            return False
        return True

    async def replies_to(self, mailbox_id: int, recipient: str, *, within: timedelta) -> int:
        """How many replies this mailbox sent to ``recipient`` in the last ``within``."""
        since = utcnow() - within
        query = select(func.count()).where(
            Activity.mailbox_id == mailbox_id,
            Activity.action == ActivityAction.REPLIED.value,
            Activity.recipient == recipient,
            Activity.created_at >= since,
        )
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)
