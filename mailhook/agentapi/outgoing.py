"""Mail an agent sends through the API, under graduated trust, past the one outbound guard.

Every message is recorded as the reply of its own spool job (source ``api`` or ``api-test``,
finished at once, no raw message), so it uses the same records as every reply: written before
submission, delivered by :class:`~mailhook.outbound.delivery.OutgoingDelivery`, never twice, and
held ones decided in the owner's approval queue (``/api/v1/pending``).

Order of judgement: the outbound guard scans the rendered message (subject, text, HTML, text-like
attachments) and the addresses of every recipient (To, Cc and Bcc); a high finding holds the
message whatever the key's trust. Then the trust: ``autonomous`` sends, ``monitored`` sends and
copies the owner, ``gated`` holds and asks the owner, ``draft`` keeps it as a draft in the queue.
``mh_test_`` keys deliver only to the sandbox outbox, notices to the owner included.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.agentapi.compose import Draft, Envelope, stamp
from mailhook.agentapi.keys import Principal
from mailhook.errors import Conflict, RelayUnavailable, TemporaryFailure
from mailhook.guard.outbound import HIGH, Hit, OutboundGuard
from mailhook.mail.addresses import domain_of
from mailhook.mail.compose import make_message_id, render_bytes
from mailhook.mail.notices import compose_monitor_copy
from mailhook.outbound.delivery import Delivered, OutgoingDelivery
from mailhook.outbound.owner_notices import OwnerNotices
from mailhook.oversight.mail_approval import ApprovalNotice, ApprovalTokens
from mailhook.oversight.sources import LIVE_API_SOURCE, SANDBOX_SOURCE, finished_job
from mailhook.store.activity import ActivityAction, ActivityLog
from mailhook.store.models import (
    AgentSend,
    Mailbox,
    MailboxStatus,
    OutgoingKind,
    OversightMode,
    ReplyState,
    utcnow,
)
from mailhook.store.replies import NewOutgoing, ReplyRecord
from mailhook.store.suppressions import Suppressions


@dataclass
class SendResult:
    """How a send ended: ``sent``, ``held`` (approval queue), ``rejected`` or ``unconfirmed``."""

    id: int
    status: str
    test: bool
    reasons: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Channels:
    """Delivery and owner notices for one kind of key (live, or test = sandbox)."""

    delivery: OutgoingDelivery
    notices: OwnerNotices


def _hold_reasons(principal: Principal, high: list[str], *, as_draft: bool) -> list[str]:
    reasons = ["outbound guard: " + ", ".join(high)] if high else []
    if as_draft:
        reasons.append(f"draft by agent key {principal.key_name!r}")
    elif principal.trust is OversightMode.GATED:
        reasons.append(f"gated agent key {principal.key_name!r}")
    elif principal.trust is OversightMode.DRAFT:
        reasons.append(f"draft-only agent key {principal.key_name!r}")
    return reasons


class AgentOutbox:
    """Judge, record and deliver agent mail."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: str,
        activity: ActivityLog,
        guard: OutboundGuard,
        live: OutgoingDelivery,
        sandbox: OutgoingDelivery,
        public_url: str,
    ) -> None:
        self._sessions = sessions
        self._secret = secret.encode()
        self._activity = activity
        self._guard = guard
        self._live = Channels(live, OwnerNotices(live, secret))
        self._test = Channels(sandbox, OwnerNotices(sandbox, secret))
        self._approval_notice = ApprovalNotice(ApprovalTokens(secret), public_url)
        self._suppressions = Suppressions(sessions)

    def scan(self, data: bytes, envelope: Envelope) -> list[Hit]:
        """Guard findings for the rendered message and every recipient address (Bcc too)."""
        found = {hit.rule: hit for hit in self._guard.scan_message(data)}
        for hit in self._guard.scan_text("\n".join((*envelope.all, *envelope.given))):
            found.setdefault(hit.rule, hit)
        return list(found.values())

    async def submit(
        self,
        principal: Principal,
        mailbox: Mailbox,
        owner_email: str,
        draft: Draft,
        *,
        as_draft: bool = False,
    ) -> SendResult:
        """Record the message, then hold it or deliver it as the guard and the key's trust say."""
        if mailbox.status != MailboxStatus.ACTIVE.value:
            raise Conflict(f"mailbox is {mailbox.status}")
        for address in draft.envelope.all:
            if await self._suppressions.contains(address):
                raise Conflict(f"{address} has unsubscribed from agent mail")
        channels = self._test if principal.test else self._live
        job_id = await self._new_job(principal, mailbox, draft)
        seed = hmac.digest(self._secret, f"agent:{job_id}".encode(), "sha256")
        message_id = make_message_id(seed, domain_of(mailbox.address))
        data = render_bytes(stamp(draft, message_id))
        hits = await asyncio.to_thread(self.scan, data, draft.envelope)
        high = sorted({h.rule for h in hits if h.severity == HIGH})
        reasons = _hold_reasons(principal, high, as_draft=as_draft)
        new = NewOutgoing(
            job_id, mailbox.id, OutgoingKind.REPLY, message_id, mailbox.address, draft.envelope.all, data
        )
        detail = {
            "findings": [{"rule": h.rule, "severity": h.severity} for h in hits],
            "key": principal.key_id,
        }
        result = SendResult(0, "held", principal.test, reasons, sorted(h.rule for h in hits))
        if reasons:
            record = await channels.delivery.replies.prepare(new, ReplyState.HELD)
            await self._activity.record(
                mailbox.id, ActivityAction.QUEUED, job_id=job_id, reason="; ".join(reasons), detail=detail
            )
            if high or (principal.trust is OversightMode.GATED and not as_draft):
                await self._ask_owner(channels, job_id, mailbox, owner_email, record, reasons)
            result.id = record.id
            return result
        record = await channels.delivery.replies.prepare(new)
        result.id = record.id
        result.status = await self._deliver(channels, record, mailbox, job_id, detail)
        if result.status == Delivered.SENT.value and principal.trust is OversightMode.MONITORED:
            await self._copy_owner(channels, job_id, mailbox, owner_email, data)
        return result

    async def _new_job(self, principal: Principal, mailbox: Mailbox, draft: Draft) -> int:
        job = finished_job(mailbox, SANDBOX_SOURCE if principal.test else LIVE_API_SOURCE, "api")
        async with self._sessions() as session, session.begin():
            session.add(job)
            await session.flush()
            session.add(
                AgentSend(
                    job_id=job.id,
                    mailbox_id=mailbox.id,
                    key_id=principal.key_id,
                    inbox_item_id=draft.inbox_item_id,
                )
            )
        return job.id

    async def _deliver(
        self,
        channels: Channels,
        record: ReplyRecord,
        mailbox: Mailbox,
        job_id: int,
        detail: dict[str, object],
    ) -> str:
        try:
            delivered = await channels.delivery.deliver(record, mailbox.id)
        except RelayUnavailable:
            # Nothing left the building and no worker will retry an API send: drop the record,
            # and the caller may send again.
            await channels.delivery.replies.move(record.id, ReplyState.FAILED, erase=True)
            raise TemporaryFailure("the relay is unavailable; nothing was sent, try again later") from None
        primary = record.recipients[0] if record.recipients else ""
        if delivered in (Delivered.SENT, Delivered.ALREADY_SENT):
            await self._activity.record(
                mailbox.id,
                ActivityAction.REPLIED,
                job_id=job_id,
                recipient=primary,
                reason="agent API",
                detail=detail,
            )
            return Delivered.SENT.value
        await self._activity.record(
            mailbox.id,
            ActivityAction.ERROR,
            job_id=job_id,
            recipient=primary,
            reason=f"agent API: {delivered.value}",
        )
        return "rejected" if delivered is Delivered.REJECTED else "unconfirmed"

    async def _ask_owner(
        self,
        channels: Channels,
        job_id: int,
        mailbox: Mailbox,
        owner_email: str,
        record: ReplyRecord,
        reasons: list[str],
    ) -> None:
        held = (record.id, record.data or b"")
        try:
            await self._approval_notice.send(channels.notices, job_id, mailbox, owner_email, held, reasons)
        except Exception:  # the message is safely held; the API and the web UI still show it
            return

    async def _copy_owner(
        self, channels: Channels, job_id: int, mailbox: Mailbox, owner_email: str, data: bytes
    ) -> None:
        def compose(message_id: str) -> EmailMessage:
            return compose_monitor_copy(
                owner=owner_email,
                mailbox_address=mailbox.address,
                reply=data,
                message_id=message_id,
                date=utcnow(),
            )

        try:
            await channels.notices.send(OutgoingKind.MONITOR_COPY, job_id, mailbox, owner_email, compose)
        except Exception:  # the message went out; a lost copy must not fail the send
            return
