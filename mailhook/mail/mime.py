"""Walks a parsed MIME tree (RFC 2045/2046) into body text, HTML and attachments.

The tree comes from hostile bytes, so every accessor on a part is guarded: an invalid charset, a
broken base64 payload, a missing boundary or an unparseable parameter degrades to a best guess,
never to an exception. The walk is iterative and bounded by ``max_depth`` (nesting) and
``max_parts`` (parts visited) so a crafted message cannot cost more than a fixed amount of work.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from .headers import decode_bytes, decode_words, strip_controls

_MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class Attachment:
    """One non-body part. ``data`` is the decoded payload (kept out of ``repr`` for logs)."""

    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False)


@dataclass(slots=True)
class Body:
    """What the walk found: inline text/plain and text/html parts, and everything else."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # header-parser bugs on crafted parameters
        return part.get_default_type()


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message) -> str:
    """Decoded file name (RFC 2231 / RFC 2047), reduced to a base name without controls."""
    try:
        raw = part.get_filename()
    except Exception:
        return ""
    if not isinstance(raw, str):
        return ""
    name = strip_controls(decode_words(raw))
    # A file name is a hint for humans, never a path: drop directories (both separators).
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:_MAX_FILENAME]


def _payload_bytes(part: Message) -> bytes:
    """Transfer-decoded payload; broken base64/quoted-printable yields what could be decoded."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def _message_bytes(part: Message) -> bytes:
    """Serialized form of an attached message (message/rfc822, RFC 2046 §5.2.1)."""
    payload: Any = part.get_payload()
    if not isinstance(payload, list):
        return _payload_bytes(part)
    chunks: list[bytes] = []
    for sub in payload:
        try:
            chunks.append(sub.as_bytes(policy=email.policy.compat32))
        except Exception:  # noqa: S112 - an unserializable sub-message is skipped, not fatal
            continue
    return b"\n".join(chunks)


def _text_of(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(_payload_bytes(part), charset)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _leaves(root: Message, *, max_parts: int, max_depth: int) -> list[Message]:
    """Leaf parts in document order, visiting at most ``max_parts`` nodes, ``max_depth`` deep."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    visited = 0
    while stack and visited < max_parts:
        part, depth = stack.pop()
        visited += 1
        is_container = part.is_multipart() and _content_type(part).startswith("multipart/")
        if not is_container:
            leaves.append(part)
        elif depth < max_depth:
            children: Any = part.get_payload()
            remaining = max_parts - visited - len(stack)
            stack.extend((child, depth + 1) for child in reversed(children[: max(remaining, 0)]))
    return leaves


def _classify(part: Message, body: Body) -> None:
    ctype = _content_type(part)
    if ctype.startswith("multipart/"):
        # A multipart whose boundary is missing or never appears is parsed as one text blob
        # (RFC 2046 §5.1.1 defects); its text is still the best body we have.
        body.plain.append(_text_of(part))
        return
    filename = _filename(part)
    inline = _disposition(part) != "attachment" and not filename
    if inline and ctype == "text/plain":
        body.plain.append(_text_of(part))
    elif inline and ctype == "text/html":
        body.html.append(_text_of(part))
    else:
        is_message = ctype.startswith("message/")
        data = _message_bytes(part) if is_message else _payload_bytes(part)
        body.attachments.append(Attachment(filename, ctype, len(data), data))


def extract_body(root: Message, *, max_parts: int, max_depth: int) -> Body:
    """Split ``root`` into inline text/plain, inline text/html and attachments."""
    body = Body()
    for part in _leaves(root, max_parts=max_parts, max_depth=max_depth):
        _classify(part, body)
    body.plain = [text for text in body.plain if text.strip()]
    body.html = [text for text in body.html if text.strip()]
    return body
