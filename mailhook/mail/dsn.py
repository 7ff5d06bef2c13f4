"""Reads delivery status notifications (bounces): RFC 3464 ``multipart/report`` messages with
``report-type=delivery-status``, and the RFC 6533 ``message/global-delivery-status`` variant.

:func:`parse_dsn` answers ``None`` for anything that is not a DSN, and otherwise a
:class:`DsnReport` with one :class:`DsnRecipient` per per-recipient block. Bounces come from
every MTA ever written and are often broken, so nothing here raises: a missing or garbled field
becomes an empty value and the kind ``unknown``.

The kind follows the RFC 3463 status class: ``5.x.x`` is a permanent failure (``hard``),
``4.x.x`` a persistent transient one (``soft``), ``2.x.x`` success (``none``). Without a usable
Status field the RFC 3464 §2.3.3 Action decides (``failed`` → hard, ``delayed`` → soft).
Only metadata leaves this module's callers' hands: the diagnostic text may quote an address and
is kept for the parser's tests, not for storage.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Final, Literal

from .headers import normalize_msg_id

__all__ = ["DsnRecipient", "DsnReport", "Kind", "parse_dsn"]

Kind = Literal["hard", "soft", "none", "unknown"]

MAX_RECIPIENTS: Final = 100
_MAX_FIELD: Final = 300
_ENCODED: Final = frozenset({"base64", "quoted-printable"})
_STATUS_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RETURNED_TYPES: Final = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}
)
# RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5, subject and detail 1-3 digits.
_STATUS: Final = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_FIELD: Final = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:(.*)$")
_MESSAGE_ID: Final = re.compile(
    r"^Message-ID[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)
_ACTION_KIND: Final[dict[str, Kind]] = {
    "failed": "hard",
    "delayed": "soft",
    "delivered": "none",
    "relayed": "none",
    "expanded": "none",
}
_CLASS_KIND: Final[dict[str, Kind]] = {"5": "hard", "4": "soft", "2": "none"}


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One per-recipient block (RFC 3464 §2.3)."""

    final_recipient: str
    action: str
    status: str
    diagnostic_code: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class DsnReport:
    """A parsed DSN: who reported it, which message bounced, and per-recipient results."""

    reporting_mta: str
    original_message_id: str | None
    recipients: tuple[DsnRecipient, ...]

    @property
    def failed(self) -> tuple[DsnRecipient, ...]:
        """Recipients the message did not (yet) reach: everything but success."""
        return tuple(r for r in self.recipients if r.kind != "none")

    @property
    def kind(self) -> Kind:
        """``hard`` if any recipient failed permanently, else ``soft``, ``unknown`` or ``none``."""
        kinds = {r.kind for r in self.recipients}
        for kind in ("hard", "soft", "unknown"):
            if kind in kinds:
                return kind
        return "none" if kinds else "unknown"

    @property
    def status(self) -> str:
        """The status code of the first recipient of the report's kind ("" when none has one)."""
        return next((r.status for r in self.recipients if r.kind == self.kind and r.status), "")


def parse_dsn(raw: bytes) -> DsnReport | None:
    """The DSN in ``raw``, or None when ``raw`` is not a delivery status notification."""
    if not _may_be_report(raw):
        return None
    try:
        message = BytesParser(policy=email.policy.compat32).parsebytes(raw)
        status_part = _status_part(message)
        if status_part is None:
            return None
        blocks = _blocks(status_part)
        returned = _original_message_id(message)
    except Exception:
        return None
    per_message = blocks[0] if blocks else {}
    recipient_blocks = [b for b in blocks if "final-recipient" in b or "original-recipient" in b]
    recipients = tuple(_recipient(block) for block in recipient_blocks[:MAX_RECIPIENTS])
    return DsnReport(
        reporting_mta=_clip(_after_type(per_message.get("reporting-mta", ""))),
        original_message_id=returned,
        recipients=recipients,
    )


def _may_be_report(raw: bytes) -> bool:
    """Whether the top-level Content-Type is ``multipart/report``, read from the header section
    alone: ordinary mail (every message a mailbox gets runs through here) is not parsed twice,
    and a large one costs a search for the blank line, not a second full parse."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    try:
        head = HeaderParser(policy=email.policy.compat32).parsestr(
            raw[: end + 2].decode("ascii", "surrogateescape"), headersonly=True
        )
        return head.get_content_type() == "multipart/report"
    except Exception:
        return True  # undecidable here: let the full parse decide


def _status_part(message: Message) -> Message | None:
    """The delivery-status part, if ``message`` is a DSN (RFC 3464 §2: multipart/report)."""
    if message.get_content_type() != "multipart/report":
        return None
    for part in _children(message):
        if part.get_content_type() in _STATUS_TYPES:
            return part
    if str(message.get_param("report-type", "") or "").lower() == "delivery-status":
        # A report whose status part is missing or mislabelled: still a DSN, of unknown kind.
        return Message()
    return None


def _blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a delivery-status part, field names lower-cased."""
    payload = part.get_payload()
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if isinstance(payload, list) and encoding not in _ENCODED:
        # compat32 parses message/delivery-status into one Message per block.
        return [
            {k.lower(): _clip(_unfold(str(v))) for k, v in block.items()}
            for block in payload
            if isinstance(block, Message)
        ]
    if isinstance(payload, list):
        # Encoded (RFC 3464 says 7bit; some MTAs use base64): the "blocks" hold the encoded text.
        text = "\n".join(str(block.get_payload()) for block in payload if isinstance(block, Message))
        return _text_blocks(_decode(text, encoding))
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
    return _text_blocks(text)


def _decode(text: str, encoding: str) -> str:
    try:
        if encoding == "base64":
            data = base64.b64decode("".join(text.split()), validate=False)
        else:
            data = quopri.decodestring(text.encode("ascii", "replace"))
    except (ValueError, binascii.Error):
        return ""
    return data.decode("utf-8", "replace")


def _text_blocks(text: str) -> list[dict[str, str]]:
    """Parse ``Name: value`` blocks separated by empty lines (continuation lines unfolded)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t" and last:
            current[last] = _clip(current[last] + " " + line.strip())
            continue
        match = _FIELD.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, _clip(match.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def _recipient(block: dict[str, str]) -> DsnRecipient:
    address = _after_type(block.get("final-recipient") or block.get("original-recipient", ""))
    action = block.get("action", "").split("(", 1)[0].strip().lower()
    diagnostic = block.get("diagnostic-code", "")
    status = _status(block.get("status", "")) or _status(diagnostic)
    kind: Kind = _CLASS_KIND[status[0]] if status else _ACTION_KIND.get(action, "unknown")
    return DsnRecipient(
        final_recipient=address.strip("<>").strip().lower()[:320],
        action=action[:32],
        status=status,
        diagnostic_code=diagnostic,
        kind=kind,
    )


def _status(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _after_type(value: str) -> str:
    """``rfc822; bob@example.org`` → ``bob@example.org`` (RFC 3464 §2.3.2 address-type)."""
    _, separator, rest = value.partition(";")
    return (rest if separator else value).strip()


def _original_message_id(message: Message) -> str | None:
    """The Message-ID of the returned message or its headers (RFC 3464 §2, third part)."""
    for part in _children(message):
        if part.get_content_type() not in _RETURNED_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found = normalize_msg_id(str(payload[0].get("message-id", "") or ""))
        else:
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
            headers = HeaderParser(policy=email.policy.compat32).parsestr(text, headersonly=True)
            found = normalize_msg_id(str(headers.get("message-id", "") or "")) or _scan_message_id(text)
        if found:
            return found
    return None


def _scan_message_id(text: str) -> str | None:
    """Last resort for a truncated or garbled returned part: the first Message-ID line."""
    match = _MESSAGE_ID.search(text)
    return normalize_msg_id(match.group(1)) if match else None


def _children(message: Message) -> list[Message]:
    """The report's own parts (a DSN forwarded inside another message is not a DSN to us)."""
    payload = message.get_payload()
    return [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def _clip(value: str) -> str:
    return value[:_MAX_FIELD]
