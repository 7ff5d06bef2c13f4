"""parse_message on hostile and broken input: it degrades, it never raises (but MalformedMessage)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhook.errors import MalformedMessage
from mailhook.mail.parse import _parsed_message_id, message_id_of, parse_message

from .factory import DEFAULT_HEADERS, raw_message

HEAD = raw_message(*DEFAULT_HEADERS, body=b"")[:-2]  # header lines, each CRLF-terminated


def test_invalid_charsets_fall_back_to_utf8() -> None:
    for charset in ("x-unknown", "rot13", "idna", "base64", "utf\\0"):
        raw = HEAD + f"Content-Type: text/plain; charset={charset}\r\n\r\ncaf\xe9 ok".encode("latin-1")
        assert parse_message(raw).text == "caf\ufffd ok", charset
    raw = HEAD + b'Content-Type: text/plain; charset="utf-8"\r\n\r\ncaf\xc3\xa9'
    assert parse_message(raw).text == "café"


def test_broken_base64_yields_what_can_be_decoded() -> None:
    raw = (
        HEAD
        + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29y!!!bGQ*\r\n==="
    )
    text = parse_message(raw).text
    assert text.startswith("Hello wor")


def test_broken_quoted_printable_and_unknown_encoding() -> None:
    raw = HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-weird\r\n\r\nplain =ZZ"
    assert parse_message(raw).text == "plain =ZZ"


def test_missing_boundary_parameter_keeps_the_text() -> None:
    raw = HEAD + b"Content-Type: multipart/mixed\r\n\r\nThe body is still here."
    assert parse_message(raw).text == "The body is still here."


def test_boundary_that_never_appears_keeps_the_text() -> None:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="nowhere"\r\n\r\nStill readable.'
    assert parse_message(raw).text == "Still readable."


def test_unterminated_multipart_keeps_parts_seen() -> None:
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst'
    )
    assert parse_message(raw).text == "first"


def _nested(levels: int, leaf: bytes = b"Content-Type: text/plain\r\n\r\ndeep text") -> bytes:
    body = leaf
    for level in range(levels):
        boundary = b"b%d" % level
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--"
        )
    return HEAD + body


def test_nesting_within_max_depth_is_read() -> None:
    assert parse_message(_nested(5), max_depth=20).text == "deep text"


def test_nesting_beyond_max_depth_is_not_descended() -> None:
    msg = parse_message(_nested(200))
    assert msg.text == ""
    assert msg.subject == "Hello"  # headers are still there
    assert parse_message(_nested(30), max_depth=40).text == "deep text"


def test_nesting_that_exhausts_the_stdlib_parser_still_gives_headers() -> None:
    started = time.perf_counter()
    msg = parse_message(_nested(1500))
    assert time.perf_counter() - started < 10
    assert (msg.message_id, msg.from_addr, msg.text) == ("<m1@example.org>", "alice@example.org", "")


def test_parts_beyond_max_parts_are_ignored() -> None:
    parts = b"".join(b"--p\r\nContent-Type: application/octet-stream\r\n\r\n%d\r\n" % i for i in range(500))
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n"
    assert len(parse_message(raw).attachments) == 199  # the root counts as a part
    assert len(parse_message(raw, max_parts=11).attachments) == 10


def test_ten_thousand_recipients_parse_fast() -> None:
    to = ", ".join(f"r{i % 2500}@example.com" for i in range(10_000))
    started = time.perf_counter()
    msg = parse_message(raw_message("From: a@example.org", f"To: {to}", f"Cc: {to}"))
    assert time.perf_counter() - started < 3
    assert len(msg.to) == 2500
    assert len(msg.cc) == 2500


def test_eight_bit_and_nul_bytes_everywhere() -> None:
    raw = b"From: \xff\xfe <a@x.org>\r\nSubject: \x00\xc0\xc1\r\nX-\xff: y\r\n\r\n\xff\x00body"
    msg = parse_message(raw)
    assert msg.from_addr == "a@x.org"
    assert "\x00" not in msg.subject
    assert msg.text.endswith("body")


# --- property: arbitrary bytes give a ParsedMessage or MalformedMessage, nothing else ----------

_FRAGMENTS = [
    b"From: a@x.org\r\n",
    b'To: =?utf-8?q?x=2C?= <b@y>, "q\\" <c@z>\r\n',
    b"Subject: =?x-unknown?B?////?=\r\n",
    b"Message-ID: <\xff@\x00>\r\n",
    b"References: <a@b> <<c@d>>\r\n",
    b"Date: Mon, 99 Foo 20000 99:99:99 +9999\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n',
    b"Content-Type: multipart/alternative; boundary=\r\n",
    b"Content-Type: text/html; charset=rot13\r\n",
    b"Content-Type: text/plain; charset*=x''%FF\"\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1=\"x\"\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"<![x <script>a</script><div style=display:none>",
    b"SGVsbG8=\r\n",
    b" folded continuation\r\n",
]

_message_like = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=20)), max_size=25).map(
    b"".join
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), _message_like))
def test_parse_message_never_raises_anything_but_malformed(raw: bytes) -> None:
    try:
        msg = parse_message(raw)
    except MalformedMessage:
        return
    assert msg.headers
    assert all("\r" not in v and "\n" not in v for _, v in msg.headers)
    assert msg.message_id is None or (msg.message_id.startswith("<") and "@" in msg.message_id)
    assert message_id_of(raw) == msg.message_id  # the cheap header-only read agrees


@pytest.mark.parametrize("raw", [b"\x00", b":", b": value", b"\xff\xfe\xfd", b"From \r\n", b"-- \r\n\r\n"])
def test_tiny_garbage_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(raw)


@pytest.mark.parametrize(
    "head",
    [
        b"From: a@example.org\r\nMessage-ID: <one@example.org>\r\n\r\n",
        b"message-id:<lower@example.org>\n\n",
        b"Message-ID :\r\n <folded@example.org>\r\n\r\n",
        b"Message-ID: (comment) <c@example.org> trailing\r\n\r\n",
        b"Message-ID: <first@example.org>\r\nMessage-ID: <second@example.org>\r\n\r\n",
        b"Message-ID: no-brackets@example.org\r\n\r\n",
        b"Message-ID: <no-at-sign>\r\n\r\n",
        b"Subject: no id here\r\n\r\n",
        b"X-Message-ID: <not-this@example.org>\r\n\r\n",
        b"Subject: a\r\n continued\r\nMessage-ID: <after-fold@example.org>\r\n\r\n",
        b"not a header line\r\nMessage-ID: <after-junk@example.org>\r\n\r\n",
        b"Subject: caf\xc3\xa9\r\nMessage-ID: <utf8@example.org>\r\n\r\n",
        b" leading continuation\r\nMessage-ID: <odd@example.org>\r\n\r\n",
        b"Message-ID: <no-blank-line@example.org>",
    ],
)
def test_the_fast_message_id_read_agrees_with_the_parser(head: bytes) -> None:
    assert message_id_of(head + b"body\r\n") == _parsed_message_id(head)
