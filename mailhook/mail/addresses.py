"""E-mail address parsing and normalisation for address header fields (RFC 5322 §3.4).

Address headers of inbound mail are hostile input: they decide who a reply goes to. This module
has its own small tokenizer instead of :func:`email.utils.getaddresses`, whose lenient parser has
been tricked into returning addresses that were never in the header (CVE-2023-27043). Parsing is
linear in the header size, never raises, and keeps only addr-specs that pass a conservative check.

Addresses are compared in lower case: RFC 5321 §2.4 lets a local part be case-sensitive, but no
provider that matters treats it so, and "Bob@x" and "bob@x" are the same person to a human.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .headers import decode_words, strip_controls, to_text, unfold

# One lexical token of an address list. Order matters: a quoted-string (RFC 5322 §3.2.4) or an
# angle-addr (§3.4) is taken whole so the commas inside do not split the list; an unterminated
# one runs to the end of the value rather than failing.
_TOKEN = re.compile(
    r"""
      "(?:[^"\\]|\\.)*(?:"|\\?\Z)                   # quoted-string
    | <(?:"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[^<>"])*(?:>|\Z)  # angle-addr, may quote its local part
    | \[[^\[\]]*(?:\]|\Z)                             # domain-literal
    | [()\\,;:<>]                                   # specials we act on
    | [^"()\\,;:<>\[\]]+                            # atoms, dots, '@' and blanks
    | .                                             # a stray ']'
    """,
    re.VERBOSE | re.DOTALL,
)
# Every alternative above either matches or fails at the next '<' or '[', so tokenizing is linear
# in the input even for hostile values (no catastrophic backtracking on unclosed quotes).
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)(?:"|\\?\Z)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

# RFC 5322 §3.2.3 atext, extended to UTF-8 by RFC 6532 §3.2. Dots are allowed anywhere in the
# local part because obsolete forms ("a..b@docomo.ne.jp") are still delivered in the wild.
_ATEXT = r"[^\x00-\x20\x7f()<>\[\]:;@\\,.\"]"
_LOCAL = re.compile(rf'(?:(?:{_ATEXT}|\.)+|"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*")')
_DOMAIN = re.compile(rf"(?:{_ATEXT}+(?:\.{_ATEXT}+)*\.?|\[[^\[\]\\\s]*\])")
# RFC 5321 §4.5.3.1: 64-octet local part, 255-octet domain, 254-octet path in practice.
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


def is_valid_address(addr: str) -> bool:
    """True if ``addr`` is a plain addr-spec we are willing to write into a header."""
    local, at, domain = addr.rpartition("@")
    return (
        bool(at)
        and 0 < len(local) <= _MAX_LOCAL
        and len(addr) <= _MAX_ADDRESS
        and _LOCAL.fullmatch(local) is not None
        and _DOMAIN.fullmatch(domain) is not None
    )


def normalize_address(addr: str) -> str:
    """Lower-cased addr-spec of ``addr`` ("<Bob@X.org>" → "bob@x.org"); "" for "" and "<>".

    No validation happens here: this is also used for SMTP envelope addresses (RFC 5321 §4.1.2),
    where "<>" is the null reverse-path of bounces.
    """
    value = strip_controls(addr)
    if "<" in value:
        value = value[value.rfind("<") + 1 :].partition(">")[0]
    value = value.strip()
    # RFC 5321 §4.1.2 obsolete source route "<@relay1,@relay2:user@host>".
    if value.startswith("@") and ":" in value:
        value = value.rpartition(":")[2]
    return value.strip().lower()


def domain_of(addr: str) -> str:
    """Lower-cased domain part of ``addr`` without a trailing dot; "" if there is none."""
    local, at, domain = normalize_address(addr).rpartition("@")
    return domain.rstrip(".") if at and local else ""


# One token of an item: (inside a comment?, text).
_Token = tuple[bool, str]


def _split_items(value: str) -> Iterator[list[_Token]]:
    """Tokens of each list item; ',' ';' and ':' outside quotes, comments and angles split.

    Splitting on ':' and ';' drops RFC 5322 §3.4 group syntax ("team: a@x, b@x;") down to its
    members, which is all a reply needs.
    """
    item: list[_Token] = []
    depth = 0  # RFC 5322 §3.2.2 comments nest
    for lexeme in _TOKEN.findall(value):
        if lexeme == "(":
            depth += 1
        elif lexeme == ")" and depth:
            depth -= 1
        elif depth == 0 and lexeme in {",", ";", ":"}:
            yield item
            item = []
            continue
        item.append((bool(depth) or lexeme == ")", lexeme))
    yield item


def _unquote(text: str) -> str:
    """Display text of a phrase: quotes removed, quoted-pairs unescaped (RFC 5322 §3.2.4)."""
    return _QUOTED.sub(lambda m: _QUOTED_PAIR.sub(r"\1", m.group(1)), text)


def _parse_item(tokens: list[_Token]) -> tuple[str, str]:
    """(display name, normalized addr-spec or "") of one list item's tokens."""
    comment = "".join(t for in_comment, t in tokens if in_comment).strip("() ")
    plain = [t for in_comment, t in tokens if not in_comment]
    angles = [i for i, t in enumerate(plain) if t.startswith("<")]
    if len(angles) > 1:
        return "", ""  # "a <x@y> <z@w>": which one is meant is a guess we refuse to make
    if angles:
        phrase = "".join(plain[: angles[0]]).strip() or comment
        addr = normalize_address(plain[angles[0]])
    else:
        phrase = comment  # RFC 5322 §3.4 obsolete "addr (Name)" form
        addr = "".join(plain).strip().lower()
    name = strip_controls(decode_words(_unquote(phrase)))
    return name, addr if is_valid_address(addr) else ""


def iter_addresses(value: str) -> Iterator[tuple[str, str]]:
    """(display name, addr-spec) for every well-formed address of one header value."""
    text = unfold(to_text(value))
    for tokens in _split_items(text):
        name, addr = _parse_item(tokens)
        if addr:
            yield name, addr


def parse_address_list(values: Iterable[str]) -> tuple[str, ...]:
    """Normalized addr-specs of all header ``values``, deduplicated, in order; never raises."""
    seen: dict[str, None] = {}
    for value in values:
        for _name, addr in iter_addresses(value):
            seen.setdefault(addr, None)
    return tuple(seen)


def display_name(value: str) -> str:
    """Decoded display name of the first mailbox in ``value`` ("" when it has none)."""
    text = unfold(to_text(value))
    for tokens in _split_items(text):
        name, addr = _parse_item(tokens)
        if addr:
            return name
    return ""


def _quote_phrase(name: str) -> str:
    """``name`` as an RFC 5322 §3.2.5 phrase: quoted when it holds specials."""
    if re.fullmatch(r"[\w !#$%&'*+/=?^`{|}~-]*", name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def decode_address_header(raw: str) -> str:
    """Readable form of an address header value with RFC 2047 display names decoded.

    RFC 2047 §5 forbids reading address syntax out of decoded text, so when the value holds
    encoded-words it is rebuilt from its parsed mailboxes with the decoded names re-quoted:
    "=?utf-8?q?a=2C_<x@evil>?= <b@x>" becomes '"a, <x@evil>" <b@x>', never a second recipient.
    """
    text = strip_controls(unfold(to_text(raw)))
    if "=?" not in text:
        return text
    parts = [f"{_quote_phrase(name)} <{addr}>" if name else addr for name, addr in iter_addresses(text)]
    return ", ".join(parts)
