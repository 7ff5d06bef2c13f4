"""Charging a credit, and the one owner notice when that charge used the last one.

:meth:`Credits.charge` pauses the owner's mailboxes when a charge leaves nothing;
:meth:`Credits.claim_billing_notice` lets exactly one caller per pause send the notice.
:class:`BillingNotices` does both for work that is not a pipeline run: an approved reply
(``oversight.approvals``) and a persona test (``agent.persona_test``). The notice is an outgoing
record of a job like every owner notice (``outbound.owner_notices``: one per job and kind,
crash-safe); a persona test has no job, so one is made for the notice (``oversight.sources``).
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.billing.credits import Credits
from mailhook.logs import get_logger
from mailhook.mail.notices import compose_billing_notice
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.oversight.sources import finished_job
from mailhook.store.models import Mailbox, OutgoingKind, utcnow

log = get_logger(__name__)


class BillingNotices:
    """Charge for work done; tell the owner once when the credits run out."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        credits: Credits,
        notices: OwnerNotices,
        public_url: str,
    ) -> None:
        self._sessions = sessions
        self.credits = credits
        self._notices = notices
        self._billing_url = public_url.rstrip("/") + "/billing"

    async def charge(
        self, mailbox: Mailbox, owner_email: str, action: str, *, job_id: int | None = None, source: str = ""
    ) -> bool:
        """Charge the mailbox's owner for ``action``; True when this charge paused the mailboxes.

        The notice hangs on ``job_id``, or, without one, on a new finished job of ``source``.
        """
        paused = await self.credits.charge(mailbox.owner_id, action)
        if paused and await self.credits.claim_billing_notice(mailbox.owner_id):
            try:
                job = job_id if job_id is not None else await self._new_job(mailbox, source)
                await self._send(mailbox, owner_email, job)
            except Exception as exc:  # the work is done and paid; a failed notice must not undo it
                log.warning("billing_notice_failed", error=type(exc).__name__)
        return paused

    async def _new_job(self, mailbox: Mailbox, source: str) -> int:
        job = finished_job(mailbox, source, "billing_notice")
        async with self._sessions() as session, session.begin():
            session.add(job)
        return job.id

    async def _send(self, mailbox: Mailbox, owner_email: str, job_id: int) -> None:
        def compose(message_id: str) -> EmailMessage:
            return compose_billing_notice(
                owner=owner_email,
                mailbox_address=mailbox.address,
                billing_url=self._billing_url,
                message_id=message_id,
                date=utcnow(),
            )

        await self._notices.send(OutgoingKind.BILLING_NOTICE, job_id, mailbox, owner_email, compose)
