"""Header-value primitives shared by the mail package: decoding, unfolding and message ids.

Everything here is total: any ``str`` goes in, a ``str`` (or ``None``) comes out, nothing raises.
Values arrive from :mod:`email` parsers where raw 8-bit bytes are smuggled through as lone
surrogates (``surrogateescape``); :func:`to_text` turns them back into real text.
"""

from __future__ import annotations

import base64
import binascii
import re

# RFC 5322 §2.2.3: unfolding removes a CRLF that is immediately followed by WSP.
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Any other control character (C0 except TAB, DEL, and lone CR/LF) must never reach a header
# we write, a log line or a prompt; it is turned into a space.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SPACES = re.compile(r"[ \t]+")

# RFC 2047 §2 encoded-word: =?charset?encoding?encoded-text?= ; RFC 2231 §5 allows a language
# suffix on the charset ("utf-8*en"), which we accept and ignore.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")

# RFC 5322 §3.6.4 msg-id: "<" id-left "@" id-right ">". Real mail breaks this in many ways, so
# we take anything bracketed without blanks or controls, and a bare "left@right" as a last resort.
_BRACKETED_ID = re.compile(r"<([^<>\s\x00-\x1f\x7f]+)>")
_BARE_ID = re.compile(r"[^<>\s\x00-\x1f\x7f@]+@[^<>\s\x00-\x1f\x7f@]+")
# RFC 5322 §2.1.1 caps a line at 998 octets; an id anywhere near that is garbage, not an id.
MAX_MSG_ID_LENGTH = 250


def to_text(value: str) -> str:
    """Turn a parser value (8-bit bytes as surrogates) into text, UTF-8 first (RFC 6532)."""
    if value.isascii():
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", errors="replace")


def unfold(value: str) -> str:
    """Unfold a header value (RFC 5322 §2.2.3) and remove every remaining CR/LF."""
    return _FOLD.sub("", value).replace("\r", " ").replace("\n", " ")


def strip_controls(value: str) -> str:
    """Replace control characters (CR, LF, NUL, ...) with spaces, squeeze blanks, strip."""
    return _SPACES.sub(" ", _CONTROLS.sub(" ", value.replace("\t", " "))).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data`` in ``charset``; unknown or non-text codecs fall back to UTF-8.

    Charsets come from the mail itself, so they may name nothing ("x-unknown"), a codec that is
    not a text encoding ("base64", "rot13") or one that refuses ``errors="replace"`` ("idna").
    """
    if charset:
        try:
            return data.decode(charset.strip().strip('"'), errors="replace")
        except Exception:  # noqa: S110 - any codec failure falls back to UTF-8 below
            pass
    return data.decode("utf-8", errors="replace")


def _decode_word_payload(encoding: str, text: str) -> bytes | None:
    """Bytes of one encoded-word's payload (RFC 2047 §4.1 "B", §4.2 "Q"); None if broken."""
    raw = text.encode("ascii", "replace")
    if encoding in "bB":
        try:
            return base64.b64decode(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            return None
    try:
        return binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return None


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; broken ones are left as they are.

    Adjacent encoded-words in one charset are joined as bytes before decoding, because mailers
    split multi-byte characters across words, and the whitespace between two encoded-words is
    dropped (RFC 2047 §6.2).
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = b""
    pending_charset = ""
    last_end = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[last_end : match.start()]
        payload = _decode_word_payload(match.group(2), match.group(3))
        charset = match.group(1).lower()
        if payload is None:
            out.append(decode_bytes(pending, pending_charset) if pending else "")
            out.append(gap + match.group(0))
            pending, pending_charset = b"", ""
        elif pending and not gap.strip() and charset == pending_charset:
            pending += payload
        else:
            if pending:
                out.append(decode_bytes(pending, pending_charset))
            out.append("" if pending and not gap.strip() else gap)
            pending, pending_charset = payload, charset
        last_end = match.end()
    if pending:
        out.append(decode_bytes(pending, pending_charset))
    out.append(value[last_end:])
    return "".join(out)


def decode_header_value(raw: str) -> str:
    """Human text of an unstructured header value: bytes → text, unfold, RFC 2047, no controls."""
    return strip_controls(decode_words(unfold(to_text(raw))))


def _valid_msg_id(inner: str) -> bool:
    left, at, right = inner.rpartition("@")
    return bool(at and left and right) and len(inner) + 2 <= MAX_MSG_ID_LENGTH


def parse_msg_ids(value: str) -> tuple[str, ...]:
    """All msg-ids in a References / In-Reply-To value, as "<left@right>", deduplicated.

    Ids without an "@" are dropped: RFC 5322 §3.6.4 requires it and they would collide.
    """
    text = unfold(to_text(value))
    found = [m.group(1) for m in _BRACKETED_ID.finditer(text)]
    if not found and "<" not in text:
        found = [m.group(0) for m in _BARE_ID.finditer(text)]
    seen: dict[str, None] = {}
    for inner in found:
        if _valid_msg_id(inner):
            seen.setdefault(f"<{inner}>", None)
    return tuple(seen)


def normalize_msg_id(value: str | None) -> str | None:
    """The first msg-id in ``value`` as "<left@right>", or None when there is none."""
    if not value:
        return None
    ids = parse_msg_ids(value)
    return ids[0] if ids else None
