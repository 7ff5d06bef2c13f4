"""Parses raw RFC 5322 bytes into an immutable :class:`ParsedMessage` the pipeline can trust.

Inbound mail is hostile and often simply broken. :func:`parse_message` uses the stdlib parser
with ``email.policy.default`` but never lets its lazy header objects loose: header values are read
raw and decoded here (8-bit bytes as UTF-8 per RFC 6532, RFC 2047 encoded-words, unfolding per
RFC 5322 §2.2.3), addresses come from :mod:`mailhook.mail.addresses`, and the MIME tree is walked
by :mod:`mailhook.mail.mime`. The only error is :class:`MalformedMessage`, raised when the bytes
have no header section at all; everything else degrades to a best effort.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime

from mailhook.errors import MalformedMessage

from .addresses import decode_address_header, display_name, parse_address_list
from .headers import decode_header_value, normalize_msg_id, parse_msg_ids, to_text, unfold
from .html_text import html_to_text
from .mime import Attachment, extract_body

__all__ = ["Attachment", "ParsedMessage", "message_id_of", "parse_message"]

# RFC 5322 §3.6.2-3 address fields (and their RFC 5322 §3.6.6 Resent- twins): their values are
# decoded mailbox by mailbox so a decoded display name can never become an address.
_ADDRESS_FIELDS = frozenset(
    {"from", "sender", "reply-to", "to", "cc", "bcc"}
    | {"resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc"}
)
# RFC 5322 §2.1: the header section ends at the first empty line.
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The parts of a message the pipeline uses. Bodies stay out of ``repr`` (logs)."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_addr: str
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    text: str = field(repr=False)
    html: str | None = field(repr=False)
    attachments: tuple[Attachment, ...] = field(repr=False)

    def header(self, name: str) -> str | None:
        """First decoded value of header ``name`` (case-insensitive), or None."""
        key = name.lower()
        return next((value for field_name, value in self.headers if field_name == key), None)

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every decoded value of header ``name`` (case-insensitive), in order."""
        key = name.lower()
        return tuple(value for field_name, value in self.headers if field_name == key)


def _parse_tree(raw: bytes) -> tuple[Message, bool]:
    """The parsed message and whether its body was parsed too.

    Absurd nesting exhausts the parser's recursion and a crafted parameter can trip a bug in the
    stdlib header parser; then the header section alone is still worth having.
    """
    try:
        return BytesParser(policy=email.policy.default).parsebytes(raw), True
    except Exception:  # RecursionError, IndexError, ... from the stdlib parser
        return _parse_head(raw), False


def _parse_head(raw: bytes) -> Message:
    try:
        return BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    except Exception as exc:
        raise MalformedMessage("the header section could not be parsed") from exc


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    """(lower-case name, unfolded raw value) of every header with a non-empty name."""
    pairs: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        key = to_text(str(name)).strip().lower()
        if key:
            pairs.append((key, unfold(to_text(str(value)))))
    return pairs


def _decoded(name: str, raw: str) -> str:
    return decode_address_header(raw) if name in _ADDRESS_FIELDS else decode_header_value(raw)


def _parse_date(value: str | None) -> datetime | None:
    """RFC 5322 §3.3 date; a "-0000" (unknown) zone is read as UTC, garbage as None."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # ValueError, TypeError, OverflowError on garbage dates
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _best_text(plain: list[str], html: list[str]) -> str:
    if plain:
        return "\n".join(plain).strip()
    return "\n".join(html_to_text(doc) for doc in html).strip()


def parse_message(raw: bytes, *, max_parts: int = 200, max_depth: int = 20) -> ParsedMessage:
    """Parse ``raw``; raises :class:`MalformedMessage` only if there is no header section."""
    raw = bytes(raw)
    if not raw.strip():
        raise MalformedMessage("empty message: no header section")
    msg, complete = _parse_tree(raw)
    raw_pairs = _raw_headers(msg)
    if not raw_pairs:
        raise MalformedMessage("no header section: the message does not start with a 'Name: value' line")

    def raw_all(name: str) -> list[str]:
        return [value for key, value in raw_pairs if key == name]

    def raw_first(name: str) -> str | None:
        return next((value for key, value in raw_pairs if key == name), None)

    from_values = raw_all("from")
    body = extract_body(msg, max_parts=max_parts, max_depth=max_depth) if complete else None
    return ParsedMessage(
        message_id=normalize_msg_id(raw_first("message-id")),
        in_reply_to=normalize_msg_id(" ".join(raw_all("in-reply-to"))),
        references=parse_msg_ids(" ".join(raw_all("references"))),
        subject=decode_header_value(raw_first("subject") or ""),
        from_addr=next(iter(parse_address_list(from_values)), ""),
        from_name=display_name(from_values[0]) if from_values else "",
        reply_to=parse_address_list(raw_all("reply-to")),
        to=parse_address_list(raw_all("to")),
        cc=parse_address_list(raw_all("cc")),
        date=_parse_date(raw_first("date")),
        headers=tuple((name, _decoded(name, value)) for name, value in raw_pairs),
        text=_best_text(body.plain, body.html) if body else "",
        html="\n".join(body.html) if body and body.html else None,
        attachments=tuple(body.attachments) if body else (),
    )


# A header section made only of well-formed ASCII fields and folded continuations (RFC 5322
# §2.2, §3.6): the door reads its Message-ID with one regex. Anything else takes the full parser.
_PLAIN_HEADER_SECTION = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)*(?:\r?\n)?")
_MESSAGE_ID_FIELD = re.compile(
    rb"^message-id:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE
)


def message_id_of(raw: bytes) -> str | None:
    """Normalized Message-ID of ``raw`` reading only its header section; None if absent.

    Every door calls this for every message (the spool deduplicates by it), so the common case,
    a plain ASCII header section, is read with a regex; the answer is the full parser's.
    """
    end = _END_OF_HEADER.search(raw)
    head = bytes(raw[: end.end()] if end else raw)
    if head.isascii() and _PLAIN_HEADER_SECTION.fullmatch(head):
        field = _MESSAGE_ID_FIELD.search(head)
        return normalize_msg_id(field.group(1).decode("ascii")) if field else None
    return _parsed_message_id(head)


def _parsed_message_id(head: bytes) -> str | None:
    try:
        msg = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    except Exception:
        return None
    for name, value in msg.raw_items():
        if str(name).strip().lower() == "message-id":
            return normalize_msg_id(to_text(str(value)))
    return None
    for name, value in msg.raw_items():
        if str(name).strip().lower() == "message-id":
            return normalize_msg_id(to_text(str(value)))
    return None
