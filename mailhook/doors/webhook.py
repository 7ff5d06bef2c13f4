"""The Cloudflare Email Worker door: one signed HTTP POST carries one raw message for one recipient.

The worker in ``cloudflare/worker.js`` posts the raw RFC 5322 bytes with these headers (the whole
protocol is in ``cloudflare/README.md``)::

    X-Mailhook-Timestamp:      unix seconds
    X-Mailhook-Envelope-From:  envelope sender, percent-encoded (encodeURIComponent)
    X-Mailhook-Envelope-To:    the one envelope recipient, percent-encoded
    X-Mailhook-Signature:      v1=<hex HMAC-SHA256(secret, "{timestamp}\\n{from}\\n{to}\\n" + body)>

The signature covers the envelope as sent, so a captured request cannot be replayed to another
recipient; the separator is a newline because it can appear in neither a header value nor an
address (a ``.`` can, and would make two envelopes sign alike). A replay of the same request
inside the window is harmless: the spool's dedup answers it as a duplicate.

Like the LMTP door this door only checks, spools and answers. It acknowledges (``202``) only
after :meth:`Spool.enqueue` committed (DESIGN.md invariant 1). The answer tells the worker what
to do with the mail: ``422`` (and mailhook's own ``413``) carry ``"permanent": true`` and make the
worker call ``setReject``; every other status, 401 for a secret that does not match included,
makes it throw, which Cloudflare turns into a temporary failure so the sender retries.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import unquote

from mailhook.doors.inbound import Inbound
from mailhook.errors import (
    MailhookError,
    MalformedMessage,
    MessageTooLarge,
    NotFound,
    PermanentRejection,
    Unauthorized,
    UnknownRecipient,
    ValidationFailed,
    http_status_for,
    smtp_reply_for,
)
from mailhook.logs import get_logger
from mailhook.settings import CloudflareSettings
from mailhook.spool.spool import Accepted, Spool
from mailhook.store.directory import Directory

log = get_logger(__name__)

SOURCE = "webhook"
HEADER_TIMESTAMP = "x-mailhook-timestamp"
HEADER_FROM = "x-mailhook-envelope-from"
HEADER_TO = "x-mailhook-envelope-to"
HEADER_SIGNATURE = "x-mailhook-signature"
SIGNATURE_VERSION = "v1"

#: Statuses of the protocol (cloudflare/README.md). 422: refused for good, the worker bounces.
ACCEPTED = 202
PERMANENT = 422

#: RFC 5321 §4.5.3.1.3: a path is at most 256 octets; the spool's columns hold 320.
MAX_ADDRESS = 320
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=([0-9a-f]{64})")
# RFC 5322 §2.1: the header section ends at the first empty line.
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def signed_payload(timestamp: str, envelope_from: str, envelope_to: str, body: bytes) -> bytes:
    """The bytes the signature covers: timestamp and envelope (as sent), then the raw message."""
    return f"{timestamp}\n{envelope_from}\n{envelope_to}\n".encode("latin-1") + body


def sign(secret: str, timestamp: str, envelope_from: str, envelope_to: str, body: bytes) -> str:
    """The ``X-Mailhook-Signature`` value for a request (the worker computes the same)."""
    payload = signed_payload(timestamp, envelope_from, envelope_to, body)
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


@dataclass(frozen=True)
class WebhookReply:
    """What the HTTP layer answers: a status and a small JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Signed:
    """The signed header values of a request, as sent."""

    timestamp: str
    envelope_from: str
    envelope_to: str
    signature: str


def refusal(exc: BaseException) -> WebhookReply:
    """The answer for a refused request. Permanent rejections are the only ones that bounce."""
    permanent = isinstance(exc, PermanentRejection)
    if isinstance(exc, MessageTooLarge):
        status = http_status_for(exc)  # 413, with "permanent": the worker bounces it too
    elif permanent:
        status = PERMANENT
    else:
        status = http_status_for(exc)
    body: dict[str, Any] = {"error": type(exc).__name__, "permanent": permanent}
    if isinstance(exc, MailhookError):
        body["detail"] = str(exc)
    else:
        body["detail"] = "internal error"
    if permanent:
        # The text Cloudflare gives the sender (``setReject``): the SMTP reply minus its code.
        body["reason"] = smtp_reply_for(exc).split(" ", 1)[1]
    return WebhookReply(status, body)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise Unauthorized(f"missing {name} header")
    return value.strip()


def _signed_headers(headers: Mapping[str, str]) -> _Signed:
    signature = _header(headers, HEADER_SIGNATURE)
    match = _SIGNATURE.fullmatch(signature.lower())
    if match is None:
        raise Unauthorized("the signature header is not v1=<hex HMAC-SHA256>")
    return _Signed(
        timestamp=_header(headers, HEADER_TIMESTAMP),
        envelope_from=_header(headers, HEADER_FROM),
        envelope_to=_header(headers, HEADER_TO),
        signature=f"{SIGNATURE_VERSION}={match.group(1)}",
    )


def _envelope_address(value: str, what: str) -> str:
    """A percent-decoded envelope address; CR, LF and other controls are refused."""
    try:
        address = unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ValidationFailed(f"{what} is not percent-encoded UTF-8") from None
    if _CONTROL.search(address):
        raise MalformedMessage(f"{what} contains control characters")
    if len(address) > MAX_ADDRESS:
        raise MalformedMessage(f"{what} is longer than {MAX_ADDRESS} characters")
    return address


def has_header_section(raw: bytes) -> bool:
    """True when ``raw`` starts with at least one ``Name: value`` header (RFC 5322 §2.2)."""
    end = _END_OF_HEADER.search(raw)
    head = raw[: end.end()] if end else raw
    try:
        parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    except Exception:  # the stdlib parser's own bugs on hostile input
        return False
    return any(str(name).strip() for name, _ in parsed.raw_items())


class WebhookDoor:
    """Verifies, reads (bounded), checks the recipient and spools one webhook request."""

    def __init__(
        self,
        settings: CloudflareSettings,
        directory: Directory,
        spool: Spool,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.spool = spool
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """The endpoint exists only when a shared secret is configured."""
        return bool(self.settings.webhook_secret)

    async def receive(self, headers: Mapping[str, str], body: AsyncIterable[bytes]) -> WebhookReply:
        """One request to one answer. Never raises; unexpected errors are 500 (temporary)."""
        try:
            accepted = await self._accept(headers, body)
        except MailhookError as exc:
            reply = refusal(exc)
            log.info("webhook_refused", status=reply.status, error=type(exc).__name__)
            return reply
        except Exception as exc:  # invariant 1: anything unexpected is a temporary failure
            log.exception("webhook_crashed", error=type(exc).__name__)
            return refusal(exc)
        duplicate = all(a.duplicate for a in accepted)
        return WebhookReply(ACCEPTED, {"job_ids": [a.job_id for a in accepted], "duplicate": duplicate})

    async def _accept(self, headers: Mapping[str, str], body: AsyncIterable[bytes]) -> list[Accepted]:
        if not self.enabled:
            raise NotFound("not found")
        signed = _signed_headers(headers)
        self._check_timestamp(signed.timestamp)
        raw = await self._read(headers.get("content-length"), body)
        self._check_signature(signed, raw)
        sender = _envelope_address(signed.envelope_from, "the envelope sender")
        recipient = _envelope_address(signed.envelope_to, "the envelope recipient")
        if not raw.strip():
            raise MalformedMessage("empty message: no header section")
        if not has_header_section(raw):
            raise MalformedMessage("no header section: the message does not start with a 'Name: value' line")
        mailbox_id = await self.directory.lookup(recipient)
        if mailbox_id is None:
            raise UnknownRecipient("no such mailbox here")
        accepted = await self.spool.enqueue(
            Inbound(SOURCE, sender, (recipient,), raw), [(recipient, mailbox_id)]
        )
        log.info(
            "accepted",
            source=SOURCE,
            size=len(raw),
            jobs=[a.job_id for a in accepted],
            duplicates=sum(a.duplicate for a in accepted),
        )
        return accepted

    def _check_timestamp(self, value: str) -> None:
        if not _TIMESTAMP.fullmatch(value):
            raise ValidationFailed("the timestamp header is not an integer (unix seconds)")
        if abs(self.clock() - int(value)) > self.settings.replay_window_seconds:
            raise Unauthorized("stale timestamp: outside the replay window (check the clocks)")

    def _check_signature(self, signed: _Signed, raw: bytes) -> None:
        expected = sign(
            self.settings.webhook_secret, signed.timestamp, signed.envelope_from, signed.envelope_to, raw
        )
        if not hmac.compare_digest(expected.encode("ascii"), signed.signature.encode("ascii")):
            raise Unauthorized("bad signature")

    async def _read(self, content_length: str | None, body: AsyncIterable[bytes]) -> bytes:
        """The whole body, refused as soon as it is known to pass the cap (announced or counted)."""
        limit = self.settings.max_message_bytes
        if content_length is not None:
            if not content_length.strip().isascii() or not content_length.strip().isdigit():
                raise ValidationFailed("invalid Content-Length")
            if int(content_length) > limit:
                raise MessageTooLarge(f"message larger than {limit} bytes")
        buffer = bytearray()
        async for chunk in body:
            buffer += chunk
            if len(buffer) > limit:
                raise MessageTooLarge(f"message larger than {limit} bytes")
        return bytes(buffer)
