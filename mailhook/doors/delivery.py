"""aiosmtpd hooks shared by the LMTP and SMTP doors: check recipients, spool, answer.

RFC 2033 §4.2: after DATA an LMTP server gives one reply per accepted RCPT, in RCPT order. The
SMTP door (RFC 5321) can only give one reply for the whole transaction, so it answers ``451``
if any recipient could not be spooled (the sending MTA retries; duplicates are dropped by the
spool's dedup).
"""

from __future__ import annotations

from typing import Any

from mailhook.doors.inbound import Inbound
from mailhook.errors import SMTP_TEMPFAIL, MailhookError, UnknownRecipient, smtp_reply_for
from mailhook.logs import get_logger
from mailhook.spool.spool import Spool
from mailhook.store.directory import Directory

log = get_logger(__name__)

OK_RCPT = "250 2.1.5 Recipient OK"
OK_QUEUED = "250 2.0.0 Queued for processing"
OK_DUPLICATE = "250 2.0.0 Already queued"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
BAD_ADDRESS = "553 5.1.3 Bad recipient address syntax"


class DeliveryHandler:
    """Event handler for aiosmtpd: the door's whole policy."""

    def __init__(
        self,
        directory: Directory,
        spool: Spool,
        *,
        source: str,
        max_recipients: int,
        per_recipient_replies: bool,
    ) -> None:
        self.directory = directory
        self.spool = spool
        self.source = source
        self.max_recipients = max_recipients
        self.per_recipient_replies = per_recipient_replies

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Advertise what we really do: RFC 2920 pipelining and RFC 2034 enhanced codes."""
        session.host_name = hostname
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return [responses[0], *extra, *responses[1:]]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept only addresses with a mailbox; a database outage is a 4xx, never a bounce."""
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RCPTS
        if "@" not in address:
            return BAD_ADDRESS
        try:
            mailbox_id = await self.directory.lookup(address)
        except MailhookError as exc:
            log.warning("rcpt_lookup_failed", error=type(exc).__name__)
            return smtp_reply_for(exc)
        if mailbox_id is None:
            return smtp_reply_for(UnknownRecipient())
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        targets: dict[str, int] = getattr(envelope, "mailhook_targets", {})
        targets[address] = mailbox_id
        envelope.mailhook_targets = targets
        return OK_RCPT

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Spool the message for every accepted recipient, then answer."""
        self.spool.ingest.arrived()
        recipients: list[str] = list(envelope.rcpt_tos)
        replies = await self.spool_and_answer(
            envelope.mail_from or "",
            recipients,
            envelope.original_content or b"",
            getattr(envelope, "mailhook_targets", {}),
        )
        if self.per_recipient_replies:
            return "\r\n".join(replies)
        return replies[0] if len(set(replies)) == 1 else SMTP_TEMPFAIL

    async def spool_and_answer(
        self, sender: str, recipients: list[str], raw: bytes, targets: dict[str, int]
    ) -> list[str]:
        """One reply line per recipient, in order. Never raises."""
        inbound = Inbound(self.source, sender, tuple(recipients), raw)
        try:
            accepted = await self.spool.enqueue(inbound, [(r, targets[r]) for r in recipients])
        except MailhookError as exc:
            log.warning("spool_failed", error=type(exc).__name__, recipients=len(recipients))
            return [smtp_reply_for(exc)] * len(recipients)
        except Exception as exc:  # invariant 1: anything unexpected is a temporary failure
            log.exception("spool_crashed", error=type(exc).__name__)
            return [SMTP_TEMPFAIL] * len(recipients)
        log.info(
            "accepted",
            source=self.source,
            size=len(raw),
            jobs=[a.job_id for a in accepted],
            duplicates=sum(a.duplicate for a in accepted),
        )
        return [OK_DUPLICATE if a.duplicate else OK_QUEUED for a in accepted]
