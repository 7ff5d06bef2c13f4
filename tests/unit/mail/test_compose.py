"""Composing and rendering replies: headers, threading, injection safety, wire format, round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage

import pytest

from mailhook.mail.compose import compose_reply, make_message_id, render_bytes
from mailhook.mail.parse import ParsedMessage, parse_message
from mailhook.mail.reply_all import Recipients, reply_recipients

from .factory import with_defaults

MAILBOX = "agent@mailhook.test"
WHEN = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)
REPLY_ID = "<reply1@mailhook.test>"


def _parent() -> ParsedMessage:
    return with_defaults(
        "Subject: Quarterly numbers",
        "To: agent@mailhook.test, bob@example.org",
        "Cc: carol@example.org",
        "References: <root@example.org>",
    )


def _reply(parent: ParsedMessage | None = None, **overrides: object) -> EmailMessage:
    parent = parent or _parent()
    kwargs: dict[str, object] = {
        "from_addr": MAILBOX,
        "from_name": "Mailhook Agent",
        "body_text": "Here they are.",
        "recipients": reply_recipients(parent, mailbox_address=MAILBOX),
        "message_id": REPLY_ID,
        "date": WHEN,
    }
    kwargs.update(overrides)
    return compose_reply(parent, **kwargs)  # type: ignore[arg-type]


def _header_names(wire: bytes) -> list[str]:
    head = wire.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and line[0] not in " \t"]


def test_make_message_id_is_deterministic_per_seed() -> None:
    first = make_message_id(b"secret|mailbox|<m1@example.org>", "Mailhook.Test.")
    assert first == make_message_id(b"secret|mailbox|<m1@example.org>", "mailhook.test")
    assert first != make_message_id(b"secret|mailbox|<m2@example.org>", "mailhook.test")
    assert first.startswith("<")
    assert first.endswith("@mailhook.test>")
    assert len(first) == len("<@mailhook.test>") + 32


@pytest.mark.parametrize("domain", ["", "bad domain", "x>\r\nBcc: y", "-x.org", "a..b"])
def test_make_message_id_rejects_unusable_domains(domain: str) -> None:
    with pytest.raises(ValueError, match="Message-ID domain"):
        make_message_id(b"seed", domain)


def test_reply_headers() -> None:
    msg = _reply()
    assert msg["From"] == "Mailhook Agent <agent@mailhook.test>"
    assert msg["To"] == "alice@example.org"
    assert msg["Cc"] == "bob@example.org, carol@example.org"
    assert msg["Subject"] == "Re: Quarterly numbers"
    assert msg["Date"] == "Tue, 04 Mar 2025 12:30:00 +0000"
    assert msg["Message-ID"] == REPLY_ID
    assert msg["In-Reply-To"] == "<m1@example.org>"
    assert msg["References"] == "<root@example.org> <m1@example.org>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == "Here they are.\n"
    assert msg["Bcc"] is None


def test_cc_is_omitted_when_empty_and_to_is_required() -> None:
    msg = _reply(recipients=Recipients(to=("alice@example.org",), cc=()))
    assert msg["Cc"] is None
    with pytest.raises(ValueError, match="To address"):
        _reply(recipients=Recipients(to=(), cc=("carol@example.org",)))


def test_footer_uses_the_signature_separator() -> None:
    msg = _reply(body_text="Hello.\r\n\n", footer="Sent by an AI agent.")
    assert msg.get_content() == "Hello.\n\n-- \nSent by an AI agent.\n"


def test_naive_date_is_taken_as_utc_and_other_zones_are_kept() -> None:
    assert _reply(date=datetime(2025, 3, 4, 12, 30))["Date"] == "Tue, 04 Mar 2025 12:30:00 +0000"
    cet = datetime(2025, 3, 4, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert _reply(date=cet)["Date"] == "Tue, 04 Mar 2025 13:30:00 +0100"


def test_crlf_in_from_name_cannot_inject_headers() -> None:
    wire = render_bytes(_reply(from_name="Agent\r\nBcc: victim@example.org\r\nX-Evil: 1"))
    names = _header_names(wire)
    assert "bcc" not in names
    assert "x-evil" not in names
    assert names.count("from") == 1


def test_crlf_in_extra_header_values_cannot_inject_headers() -> None:
    extra = {"X-Mailhook-Run": "abc\r\nBcc: victim@example.org\nX-Evil: 1"}
    wire = render_bytes(_reply(extra_headers=extra))
    names = _header_names(wire)
    assert "bcc" not in names
    assert "x-evil" not in names
    assert parse_message(wire).header("x-mailhook-run") == "abc Bcc: victim@example.org X-Evil: 1"


def test_crlf_in_parent_subject_cannot_inject_headers() -> None:
    parent = with_defaults("Subject: =?utf-8?q?hi=0D=0ABcc:_victim@example.org?=")
    names = _header_names(render_bytes(_reply(parent)))
    assert "bcc" not in names


@pytest.mark.parametrize(
    "extra",
    [
        {"Bcc": "victim@example.org"},
        {"auto-submitted": "no"},
        {"To": "x@y.org"},
        {"Bad Name": "x"},
        {"X:y": "z"},
    ],
)
def test_extra_headers_cannot_replace_owned_fields_or_use_bad_names(extra: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        _reply(extra_headers=extra)


@pytest.mark.parametrize(
    "recipients",
    [
        Recipients(to=("alice@example.org\r\nBcc: victim@example.org",), cc=()),
        Recipients(to=("alice@example.org",), cc=("not an address",)),
        Recipients(to=("a@x.org, b@y.org",), cc=()),
    ],
)
def test_recipients_are_validated(recipients: Recipients) -> None:
    with pytest.raises(ValueError, match="address"):
        _reply(recipients=recipients)


def test_message_id_and_from_are_validated() -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        _reply(message_id="<a@b>\r\nBcc: v@x")
    with pytest.raises(ValueError, match="From"):
        _reply(from_addr="not-an-address")


def test_render_bytes_uses_crlf_and_keeps_long_ids_intact() -> None:
    long_id = "<" + "a" * 120 + "@example.org>"
    refs = " ".join(f"<{i}{'b' * 60}@x.org>" for i in range(25))
    parent = with_defaults(f"Message-ID: {long_id}", f"References: {refs}")
    wire = render_bytes(_reply(parent))
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert b"=?" not in wire  # no RFC 2047 mangling of msg-ids
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))
    reparsed = parse_message(wire)
    assert reparsed.in_reply_to == long_id
    assert len(reparsed.references) == 20
    assert reparsed.references[-1] == long_id


def test_non_ascii_body_and_names_stay_7bit_on_the_wire() -> None:
    wire = render_bytes(_reply(from_name="Jörg Agent", body_text="Grüße, " + "x" * 200))
    assert wire.isascii()
    assert b"Content-Transfer-Encoding: quoted-printable" in wire
    reparsed = parse_message(wire)
    assert reparsed.from_name == "Jörg Agent"
    assert reparsed.text == "Grüße, " + "x" * 200


def test_non_ascii_addresses_are_rendered_with_smtputf8() -> None:
    recipients = Recipients(to=("jörg@bücher.de",), cc=())
    wire = render_bytes(_reply(recipients=recipients))
    assert "To: jörg@bücher.de\r\n".encode() in wire
    assert parse_message(wire).to == ("jörg@bücher.de",)


def test_long_recipient_lists_are_folded() -> None:
    cc = tuple(f"person{i}@example.org" for i in range(300))
    wire = render_bytes(_reply(recipients=Recipients(to=("alice@example.org",), cc=cc)))
    assert max(len(line) for line in wire.split(b"\r\n")) <= 78
    assert parse_message(wire).cc == cc


def test_round_trip_keeps_threading_recipients_and_auto_submitted() -> None:
    parent = _parent()
    recipients = reply_recipients(parent, mailbox_address=MAILBOX)
    wire = render_bytes(_reply(parent, recipients=recipients, footer="-- the agent"))
    reply = parse_message(wire)
    assert reply.message_id == REPLY_ID
    assert reply.in_reply_to == parent.message_id
    assert reply.references == ("<root@example.org>", "<m1@example.org>")
    assert (reply.to, reply.cc) == (recipients.to, recipients.cc)
    assert (reply.from_addr, reply.from_name) == (MAILBOX, "Mailhook Agent")
    assert reply.subject == "Re: Quarterly numbers"
    assert reply.header("auto-submitted") == "auto-replied"
    assert reply.date == WHEN
    assert reply.text == "Here they are.\n\n-- \n-- the agent"
    # the stdlib reads it back the same way
    assert message_from_bytes(wire)["Auto-Submitted"] == "auto-replied"
