"""Builds the reply message and renders it to bytes for SMTP submission.

Every reply carries ``Auto-Submitted: auto-replied`` (RFC 3834 §5, DESIGN.md invariant 4) and the
threading fields of RFC 5322 §3.6.4. Nothing that came from the inbound mail or from the model can
add a header: CR/LF and other controls are stripped from every value, field names are checked,
and recipients come only from :class:`~mailhook.mail.reply_all.Recipients` (never a Bcc field).

Structured fields whose content we control exactly (recipients, message ids) are stored
pre-folded with :meth:`~email.message.Message.set_raw`, because the stdlib folder would turn a
long msg-id into an RFC 2047 encoded-word, which is not a msg-id any more.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address, BaseHeader
from email.message import EmailMessage
from email.utils import format_datetime

from .addresses import is_valid_address, normalize_address
from .headers import normalize_msg_id, strip_controls
from .parse import ParsedMessage
from .reply_all import Recipients
from .thread import reply_subject, threading_headers

# RFC 5322 §3.6.8: a field name is printable US-ASCII except ':'.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# Fields compose_reply owns; an extra header must not replace or duplicate them.
_PROTECTED = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references"}
    | {"auto-submitted", "mime-version", "content-type", "content-transfer-encoding"}
)
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
# RFC 5322 §2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998.
_FOLD_WIDTH = 78
_MAX_LINE = 998
# RFC 3676 §4.3 signature separator.
SIGNATURE_SEPARATOR = "\n\n-- \n"


def make_message_id(seed: bytes, domain: str) -> str:
    """Deterministic RFC 5322 msg-id "<hex@domain>": the same seed always gives the same id.

    The caller salts ``seed`` with a secret, so ids neither leak nor can be predicted; being
    deterministic lets a retried send reuse the id of the first attempt (invariant 2).
    """
    host = domain.strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    return f"<{hashlib.sha256(seed).hexdigest()[:32]}@{host}>"


def _fold(name: str, items: Sequence[str], separator: str) -> str:
    """Items joined by ``separator`` + space, pre-folded at whitespace (RFC 5322 §2.2.3)."""
    lines: list[str] = []
    current = ""
    width = len(name) + 2
    for index, item in enumerate(items):
        piece = item + (separator if index < len(items) - 1 else "")
        if current and width + len(current) + 1 + len(piece) > _FOLD_WIDTH:
            lines.append(current)
            current, width = "", 1
        current = f"{current} {piece}" if current else piece
    lines.append(current)
    return "\n ".join(lines)


def _checked_addresses(addresses: Sequence[str], role: str) -> tuple[str, ...]:
    checked = tuple(normalize_address(a) for a in addresses)
    for addr in checked:
        if not is_valid_address(addr):
            raise ValueError(f"invalid {role} address: {addr!r}")
    return checked


def _body(body_text: str, footer: str | None) -> str:
    text = body_text.replace("\r\n", "\n").replace("\r", "\n")
    if footer:
        footer_text = footer.replace("\r\n", "\n").replace("\r", "\n")
        text = text.rstrip("\n") + SIGNATURE_SEPARATOR + footer_text
    return text


_URL = re.compile(r"https?://[^\s<>\"']+")


def text_to_html(text: str) -> str:
    """A simple HTML rendering of plain text: escaped, paragraphs, line breaks, links.

    Only http(s) URLs become links, and the text is escaped first, so nothing the model wrote
    can add markup (no script, no styles, no hidden content).
    """

    def paragraph(block: str) -> str:
        escaped = html.escape(block)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        return "<p>" + linked.replace("\n", "<br>\n") + "</p>"

    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    body = "\n".join(paragraph(b) for b in blocks)
    return f'<!doctype html>\n<html><body style="font-family:sans-serif">\n{body}\n</body></html>\n'


def set_body(msg: EmailMessage, text: str, *, with_html: bool = False) -> None:
    # 7bit when we can (every relay and DKIM canonicalisation is happy), else quoted-printable
    # rather than 8bit, so the reply does not depend on the relay's 8BITMIME (RFC 6152).
    plain = text.isascii() and all(len(line) <= _FOLD_WIDTH for line in text.split("\n"))
    cte = "7bit" if plain else "quoted-printable"
    msg.set_content(text, subtype="plain", charset="utf-8", cte=cte)
    if with_html:
        # RFC 2046 §5.1.4 multipart/alternative: plain first, the richer form last.
        msg.add_alternative(text_to_html(text), subtype="html", charset="utf-8", cte="quoted-printable")


def _add_extra_headers(msg: EmailMessage, extra_headers: Mapping[str, str]) -> None:
    for name, value in extra_headers.items():
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid header name: {name!r}")
        if name.lower() in _PROTECTED:
            raise ValueError(f"header {name!r} is set by compose_reply and cannot be overridden")
        clean = strip_controls(value)
        if len(name) + 2 + len(clean) > _MAX_LINE:
            raise ValueError(f"header {name!r} is too long")
        if clean.isascii():
            msg.set_raw(name, clean)
        else:
            msg[name] = clean  # non-ASCII text becomes RFC 2047 encoded-words when rendered


def _add_threading(msg: EmailMessage, parent: ParsedMessage) -> None:
    in_reply_to, references = threading_headers(parent)
    if in_reply_to:
        msg.set_raw("In-Reply-To", in_reply_to)
    if references:
        msg.set_raw("References", _fold("References", references, ""))


def compose_reply(
    parent: ParsedMessage,
    *,
    from_addr: str,
    from_name: str,
    body_text: str,
    recipients: Recipients,
    message_id: str,
    date: datetime,
    footer: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
    with_html: bool = False,
) -> EmailMessage:
    """The reply to ``parent`` as a text/plain UTF-8 message; raises ValueError on bad input."""
    to = _checked_addresses(recipients.to, "To")
    cc = _checked_addresses(recipients.cc, "Cc")
    if not to:
        raise ValueError("a reply needs at least one To address")
    sender = _checked_addresses([from_addr], "From")[0]
    if normalize_msg_id(message_id) != message_id:
        raise ValueError(f"invalid Message-ID: {message_id!r}")
    when = date if date.tzinfo else date.replace(tzinfo=UTC)

    msg = EmailMessage()
    msg["From"] = Address(display_name=strip_controls(from_name), addr_spec=sender)
    msg.set_raw("To", _fold("To", to, ","))
    if cc:
        msg.set_raw("Cc", _fold("Cc", cc, ","))
    msg["Subject"] = reply_subject(parent.subject)
    msg["Date"] = format_datetime(when)  # RFC 5322 §3.3 date-time
    msg.set_raw("Message-ID", message_id)
    _add_threading(msg, parent)
    msg.set_raw("Auto-Submitted", "auto-replied")  # RFC 3834 §5: ALWAYS on an automatic reply
    if extra_headers:
        _add_extra_headers(msg, extra_headers)
    msg["MIME-Version"] = "1.0"
    set_body(msg, _body(body_text, footer), with_html=with_html)
    return msg


def _needs_smtputf8(msg: EmailMessage) -> bool:
    """True if an address is non-ASCII: RFC 6532 headers, sendable only with SMTPUTF8."""
    for _name, value in msg.raw_items():
        if isinstance(value, BaseHeader):
            addresses = getattr(value, "addresses", ())
            if any(not address.addr_spec.isascii() for address in addresses):
                return True
        elif not str(value).isascii():
            return True
    return False


def render_bytes(msg: EmailMessage) -> bytes:
    """Wire form of ``msg`` with CRLF line ends (RFC 5321 §2.3.8), ready for DATA.

    Pre-folded raw fields are written as they are (``refold_source="none"``); the SMTPUTF8
    policy (RFC 6532) is used only when an address needs it.
    """
    base = email_policy.SMTPUTF8 if _needs_smtputf8(msg) else email_policy.SMTP
    return msg.as_bytes(policy=base.clone(refold_source="none"))
