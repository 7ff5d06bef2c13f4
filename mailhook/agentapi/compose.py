"""Messages an agent writes through the API: new mail and replies, built by mailhook's compose code.

Recipients are validated addresses only; Bcc never becomes a header (RFC 5322 §3.6.3: the
envelope carries it). A new message is ``Auto-Submitted: auto-generated`` and a reply
``auto-replied`` (RFC 3834 §5). Replies take their recipients from
:func:`~mailhook.mail.reply_all.reply_recipients` and their threading from
:func:`~mailhook.mail.compose.compose_reply`: the agent never picks who a reply goes to.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final

from mailhook.errors import ValidationFailed
from mailhook.mail.addresses import is_valid_address, normalize_address
from mailhook.mail.compose import SIGNATURE_SEPARATOR, compose_reply, set_body
from mailhook.mail.headers import strip_controls
from mailhook.mail.parse import ParsedMessage
from mailhook.mail.reply_all import Recipients, reply_recipients
from mailhook.pipeline.steps.compose import MAX_REPLY_RECIPIENTS, footer
from mailhook.store.fields import clean_text
from mailhook.store.models import Mailbox, utcnow

MAX_TEXT_CHARS: Final = 100_000
MAX_SUBJECT_CHARS: Final = 998
MAX_ATTACHMENTS: Final = 20
MAX_ATTACHMENT_BYTES: Final = 5 * 1024 * 1024
_PLACEHOLDER_ID: Final = "<placeholder@mailhook.invalid>"


@dataclass(frozen=True)
class AttachmentIn:
    """An attachment as an agent sends it."""

    filename: str
    content_type: str
    content_base64: str


@dataclass(frozen=True)
class Envelope:
    """Who a message goes to: the header recipients, and Bcc (envelope only)."""

    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    #: The addresses as the caller wrote them (the guard reads these too: normalising lower-cases).
    given: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """Every envelope recipient (RCPT TO), each once."""
        return tuple(dict.fromkeys((*self.to, *self.cc, *self.bcc)))


@dataclass
class Draft:
    """A composed message waiting for its Message-ID (given once its record exists)."""

    message: EmailMessage
    envelope: Envelope
    inbox_item_id: int | None = None
    notes: list[str] = field(default_factory=list)


def clean_addresses(role: str, values: Sequence[str]) -> tuple[str, ...]:
    """Normalised, valid, de-duplicated addresses."""
    cleaned: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str) or len(value) > 320:
            raise ValidationFailed(f"{role}: not an address")
        address = normalize_address(value)
        if not is_valid_address(address):
            raise ValidationFailed(f"{role}: {value!r} is not a valid address")
        cleaned[address] = None
    return tuple(cleaned)


def _decoded(item: AttachmentIn, number: int) -> tuple[str, str, str, bytes]:
    name = strip_controls(item.filename).strip().replace("/", "_").replace("\\", "_")
    if not name or len(name) > 255:
        raise ValidationFailed(f"attachment {number}: filename must be 1 to 255 characters")
    maintype, slash, subtype = item.content_type.strip().lower().partition("/")
    if not slash or not maintype.isascii() or not subtype or any(c in subtype for c in " ;\r\n"):
        raise ValidationFailed(f"attachment {number}: content_type must be type/subtype")
    if len(item.content_base64) > MAX_ATTACHMENT_BYTES * 4 // 3 + 4:
        raise ValidationFailed(f"attachment {number}: at most {MAX_ATTACHMENT_BYTES:,} bytes")
    try:
        data = base64.b64decode(item.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"attachment {number}: content_base64 is not base64") from None
    return name, maintype, subtype, data


def _add_attachments(message: EmailMessage, attachments: Sequence[AttachmentIn]) -> None:
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationFailed(f"at most {MAX_ATTACHMENTS} attachments")
    for number, item in enumerate(attachments, start=1):
        name, maintype, subtype, data = _decoded(item, number)
        if maintype == "text":
            message.add_attachment(
                data.decode("utf-8", "replace"), subtype=subtype, charset="utf-8", filename=name
            )
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def _check_count(envelope: Envelope) -> None:
    if not envelope.all:
        raise ValidationFailed("at least one recipient (to, cc or bcc) is required")
    if len(envelope.all) > MAX_REPLY_RECIPIENTS:
        raise ValidationFailed(f"at most {MAX_REPLY_RECIPIENTS} recipients")


def _unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    return {
        # Tells Exchange not to answer with an out-of-office (loop prevention).
        "X-Auto-Response-Suppress": "All",
        # RFC 2369 + RFC 8058 one-click unsubscribe for the person we write to.
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def compose_new(
    mailbox: Mailbox,
    envelope: Envelope,
    *,
    subject: str,
    text: str,
    html: str | None,
    attachments: Sequence[AttachmentIn],
    unsubscribe_url: str,
) -> Draft:
    """A new message from the mailbox (text, optional HTML alternative, attachments)."""
    _check_count(envelope)
    subject = strip_controls(clean_text("subject", subject, MAX_SUBJECT_CHARS))
    text = clean_text("text", text, MAX_TEXT_CHARS)
    if html is not None:
        html = clean_text("html", html, MAX_TEXT_CHARS * 5)
    message = EmailMessage()
    message["From"] = Address(display_name=strip_controls(mailbox.display_name), addr_spec=mailbox.address)
    if envelope.to:
        message["To"] = ", ".join(envelope.to)
    if envelope.cc:
        message["Cc"] = ", ".join(envelope.cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message.set_raw("Message-ID", _PLACEHOLDER_ID)
    message.set_raw("Auto-Submitted", "auto-generated")  # RFC 3834 §5: not a reply, still automatic
    for name, value in _unsubscribe_headers(unsubscribe_url).items():
        message.set_raw(name, value)
    message["MIME-Version"] = "1.0"
    body = (
        text.replace("\r\n", "\n").rstrip("\n")
        + SIGNATURE_SEPARATOR
        + footer(mailbox.signature, unsubscribe_url)
    )
    set_body(message, body)
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    _add_attachments(message, attachments)
    return Draft(message, envelope)


def reply_envelope(parent: ParsedMessage, mailbox: Mailbox, *, reply_all: bool) -> Recipients:
    """The reply's To/Cc, computed from the original (never chosen by the agent)."""
    recipients = reply_recipients(parent, mailbox_address=mailbox.address, reply_all=reply_all)
    if not recipients.all:
        raise ValidationFailed("the message names nobody to reply to")
    return recipients


def compose_agent_reply(
    parent: ParsedMessage,
    mailbox: Mailbox,
    *,
    text: str,
    reply_all: bool,
    unsubscribe_url_for: Callable[[str], str],
    inbox_item_id: int,
) -> Draft:
    """A reply to ``parent`` with computed recipients and RFC 5322 threading."""
    recipients = reply_envelope(parent, mailbox, reply_all=reply_all)
    envelope = Envelope(to=recipients.to, cc=recipients.cc)
    _check_count(envelope)
    unsubscribe = unsubscribe_url_for(recipients.to[0])
    reply = compose_reply(
        parent,
        from_addr=mailbox.address,
        from_name=mailbox.display_name,
        body_text=clean_text("text", text, MAX_TEXT_CHARS),
        recipients=recipients,
        message_id=_PLACEHOLDER_ID,
        date=utcnow(),
        footer=footer(mailbox.signature, unsubscribe),
        with_html=True,
        extra_headers=_unsubscribe_headers(unsubscribe),
    )
    return Draft(reply, envelope, inbox_item_id=inbox_item_id)


def stamp(draft: Draft, message_id: str) -> EmailMessage:
    """The draft with its final Message-ID."""
    message = draft.message
    del message["Message-ID"]
    message.set_raw("Message-ID", message_id)
    return message
