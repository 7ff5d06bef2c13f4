"""Composition of agent mail without I/O: hostile subjects, names and addresses cannot add
headers, Bcc never becomes a header, reply recipients come from the original only."""

from __future__ import annotations

import base64

import pytest

from mailhook.agentapi.compose import (
    AttachmentIn,
    Envelope,
    clean_addresses,
    compose_agent_reply,
    compose_new,
    stamp,
)
from mailhook.errors import ValidationFailed
from mailhook.mail.compose import render_bytes
from mailhook.mail.parse import parse_message
from mailhook.store.models import Mailbox
from tests.lmtp_client import make_message

MAILBOX = Mailbox(id=1, address="bot@agents.test", display_name="Bot\r\nBcc: evil@example.org", signature="")


def rendered(**kw: object) -> bytes:
    envelope = Envelope(to=("carol@example.org",), bcc=("hidden@example.org",))
    args: dict[str, object] = {"subject": "Hi", "text": "Body", "html": None, "attachments": ()}
    args.update(kw)
    draft = compose_new(MAILBOX, envelope, unsubscribe_url="https://m.example/u/x", **args)  # type: ignore[arg-type]
    return render_bytes(stamp(draft, "<abc@agents.test>"))


def test_no_header_injection_and_no_bcc_header() -> None:
    data = rendered(subject="Hi\r\nBcc: evil@example.org\r\nX-Evil: 1")
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nbcc:" not in head and b"\r\nx-evil:" not in head
    assert b"hidden@example.org" not in data, "Bcc is envelope only"
    parsed = parse_message(data)
    assert parsed.message_id == "<abc@agents.test>" and parsed.to == ("carol@example.org",)


def test_attachments_are_kept_and_bad_ones_refused() -> None:
    good = AttachmentIn("../../etc/notes.txt", "text/plain", base64.b64encode(b"hello").decode())
    parsed = parse_message(rendered(attachments=(good,)))
    [attachment] = parsed.attachments
    assert attachment.filename == ".._.._etc_notes.txt" and attachment.data.strip() == b"hello"
    for bad in (
        AttachmentIn("a.bin", "application/octet-stream", "not base64!"),
        AttachmentIn("a.bin", "application/octet-stream; x=\r\nBcc: y", ""),
        AttachmentIn("", "text/plain", ""),
    ):
        with pytest.raises(ValidationFailed):
            rendered(attachments=(bad,))
    with pytest.raises(ValidationFailed):
        rendered(attachments=(good,) * 21)


@pytest.mark.parametrize("address", ["a@b.example\r\nBcc: x@y.example", "no-at-sign", "a@", "<>", "x" * 400])
def test_addresses_must_be_plain_and_valid(address: str) -> None:
    with pytest.raises(ValidationFailed):
        clean_addresses("to", [address])


def test_reply_recipients_come_from_the_original() -> None:
    parent = parse_message(
        make_message(cc="bob@example.org, bot@agents.test", extra_headers={"Reply-To": "help@example.org"})
    )
    only_author = compose_agent_reply(
        parent,
        MAILBOX,
        text="ok",
        reply_all=False,
        unsubscribe_url_for=lambda a: "https://u",
        inbox_item_id=1,
    )
    assert only_author.envelope.all == ("help@example.org",)
    everyone = compose_agent_reply(
        parent, MAILBOX, text="ok", reply_all=True, unsubscribe_url_for=lambda a: "https://u", inbox_item_id=1
    )
    assert everyone.envelope.to == ("help@example.org",)
    assert set(everyone.envelope.cc) == {"bob@example.org"}, "never the mailbox itself"
