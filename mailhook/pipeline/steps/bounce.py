"""Step before the guards, bounce: a delivery status notification (RFC 3464) is recorded, never
answered.

A DSN that reports failure or delay ends the run as ``bounced`` with metadata only: the RFC 3463
status, hard or soft, per-recipient domain and address fingerprint, and, when the bounced
Message-ID is one of this mailbox's own replies, that reply (whose record is marked). A DSN that
only reports success ends as ``skipped``. Either way nothing is sent in answer (RFC 3464 §2 and
RFC 3834 §2: a notification must not trigger another one), and the model never sees it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.mail.dsn import DsnReport, parse_dsn
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Reply
from mailhook.store.suppressions import address_hash

MAX_LISTED = 20


class BounceStep:
    """Recognise a DSN, record it as ``bounced`` and stop."""

    name = "bounce"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def process(self, ctx: MessageContext) -> None:
        """Do nothing for ordinary mail; otherwise stop with ``bounced`` (or ``skipped``)."""
        report = parse_dsn(ctx.job.raw)
        if report is None:
            return
        if report.kind == "none":
            raise Stop(ActivityAction.SKIPPED, "delivery status notification: delivered")
        detail = bounce_detail(report)
        reply = await self._link(ctx.need_mailbox().id, report)
        if reply is not None:
            detail |= {
                "reply_id": reply.id,
                "reply_job_id": reply.job_id,
                "reply_message_id": reply.message_id,
            }
        reason = f"{report.kind} bounce {report.status}".strip()
        raise Stop(ActivityAction.BOUNCED, reason, **detail)

    async def _link(self, mailbox_id: int, report: DsnReport) -> Reply | None:
        """The mailbox's own outgoing message the DSN is about, marked as bounced."""
        if not report.original_message_id:
            return None
        async with self._sessions() as session, session.begin():
            reply = await session.scalar(
                select(Reply).where(
                    Reply.message_id == report.original_message_id, Reply.mailbox_id == mailbox_id
                )
            )
            if reply is None:
                return None
            note = f"bounced: {report.kind} {report.status}".strip()
            await session.execute(update(Reply).where(Reply.id == reply.id).values(last_error=note[:500]))
        return reply


def bounce_detail(report: DsnReport) -> dict[str, Any]:
    """Activity detail of a DSN: codes, kinds, counts, recipient domains and fingerprints."""
    recipients = [
        {
            "domain": r.final_recipient.rpartition("@")[2],
            "hash": address_hash(r.final_recipient)[:16] if r.final_recipient else "",
            "action": r.action,
            "status": r.status,
            "kind": r.kind,
        }
        for r in report.failed[:MAX_LISTED]
    ]
    return {
        "kind": report.kind,
        "status": report.status,
        "counts": {
            "total": len(report.recipients),
            "hard": sum(r.kind == "hard" for r in report.recipients),
            "soft": sum(r.kind == "soft" for r in report.recipients),
        },
        "recipients": recipients,
    }
