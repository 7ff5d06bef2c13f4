"""Header-value primitives: RFC 2047 decoding, unfolding, control stripping, msg-ids."""

from __future__ import annotations

import pytest

from mailhook.mail.headers import (
    MAX_MSG_ID_LENGTH,
    decode_bytes,
    decode_header_value,
    decode_words,
    normalize_msg_id,
    parse_msg_ids,
    strip_controls,
    to_text,
    unfold,
)


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?utf-8?q?J=C3=B6rg_M=C3=BCller?=", "Jörg Müller"),
        ("=?UTF-8?B?SsO2cmc=?=", "Jörg"),
        ("=?iso-8859-1?q?caf=E9?=", "café"),
        ("=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),  # RFC 2231 language suffix
        ("Re: =?utf-8?q?caf=C3=A9?= now", "Re: café now"),
        ("plain text", "plain text"),
    ],
)
def test_decode_words_decodes_rfc2047(encoded: str, decoded: str) -> None:
    assert decode_words(encoded) == decoded


def test_decode_words_drops_whitespace_between_adjacent_words() -> None:
    # RFC 2047 §6.2: "=?a?= =?b?=" reads as "ab"; plain text between words is kept.
    assert decode_words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"
    assert decode_words("=?utf-8?q?a?= and =?utf-8?q?b?=") == "a and b"


def test_decode_words_joins_a_character_split_across_words() -> None:
    # "ö" is C3 B6 in UTF-8; some mailers put each byte in its own encoded-word.
    assert decode_words("=?utf-8?B?ww==?= =?utf-8?B?tg==?=") == "ö"
    assert decode_words("=?utf-8?q?=C3?= =?utf-8?q?=B6?=") == "ö"


def test_decode_words_leaves_broken_words_and_survives_unknown_charsets() -> None:
    assert decode_words("=?utf-8?B?a?=") == "=?utf-8?B?a?="  # impossible base64 length
    assert decode_words("=?x-unknown?q?abc?=") == "abc"
    assert decode_words("=?rot13?q?abc?=") == "abc"  # a codec that is not a text encoding
    assert decode_words("=?idna?q?=FF?=") == "\ufffd"  # a codec that refuses errors="replace"


def test_decode_bytes_falls_back_to_utf8_with_replacement() -> None:
    assert decode_bytes("é".encode("latin-1"), "latin-1") == "é"
    assert decode_bytes(b"caf\xc3\xa9", "x-unknown") == "café"
    assert decode_bytes(b"\xff", None) == "\ufffd"
    assert decode_bytes(b"abc", "utf\x00") == "abc"


def test_to_text_turns_smuggled_bytes_into_utf8() -> None:
    smuggled = "caf\udcc3\udca9"  # what BytesParser makes of b"caf\xc3\xa9"
    assert to_text(smuggled) == "café"
    assert to_text("ab\udcff") == "ab\ufffd"
    assert to_text("plain") == "plain"


def test_unfold_and_strip_controls() -> None:
    assert unfold("a\r\n b\n\tc") == "a b\tc"
    assert "\n" not in unfold("a\r\nb")
    assert "\r" not in unfold("a\rb")
    assert strip_controls("a\r\nBcc: x@y\x00 z\t ") == "a Bcc: x@y z"


def test_decode_header_value_cannot_smuggle_newlines() -> None:
    # An encoded-word may decode to CR/LF; that must never survive into a header we reuse.
    value = decode_header_value("=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?=")
    assert value == "Hi Bcc: victim@example.org"


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("<a@x> <b@y>", ("<a@x>", "<b@y>")),
        ("<a@x>,<b@y>\r\n <a@x>", ("<a@x>", "<b@y>")),
        ("<a@x> (comment) <no-at-sign>", ("<a@x>",)),
        ("bare@host", ("<bare@host>",)),
        ("John's message of Monday", ()),
        ("<a\x00b@x>", ()),
        ("", ()),
    ],
)
def test_parse_msg_ids(value: str, ids: tuple[str, ...]) -> None:
    assert parse_msg_ids(value) == ids


def test_normalize_msg_id() -> None:
    assert normalize_msg_id(" <Id.1@Host> ") == "<Id.1@Host>"  # case is significant in ids
    assert normalize_msg_id(None) is None
    assert normalize_msg_id("garbage") is None
    assert normalize_msg_id("<" + "x" * MAX_MSG_ID_LENGTH + "@h>") is None
