"""The IMAP door's pure parts with hostile input: quoting, reverse-paths, thread search keys."""

from __future__ import annotations

import pytest

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.doors.imap.store import quoted
from mailhook.doors.imap.sync import envelope_sender_of
from mailhook.doors.imap.thread import MAX_IDS, search_criteria
from mailhook.errors import ConfigError
from mailhook.mail.parse import parse_message
from mailhook.settings import load_settings


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("<a@b>", '"<a@b>"'),
        ('<"x"@b>', '"<\\"x\\"@b>"'),
        ("<a\\b@c>", '"<a\\\\b@c>"'),
        # CR/LF would end the command line and start a command of the sender's choosing.
        ("<a@b>\r\nA1 DELETE INBOX", '"<a@b>A1 DELETE INBOX"'),
        ("\x00<a@b>", '"<a@b>"'),
    ],
)
def test_quoted_strings_cannot_break_out_of_the_command(text: str, wire: str) -> None:
    assert quoted(text) == wire


@pytest.mark.parametrize(
    ("head", "sender"),
    [
        (b"Return-Path: <bounce@list.test>\r\nFrom: a@b.test\r\n\r\nx", "bounce@list.test"),
        (b"Return-Path: <>\r\nFrom: a@b.test\r\n\r\nx", ""),
        (b"From: Alice <alice@b.test>\r\n\r\nx", "alice@b.test"),
        (b"\xff\xfe garbage without any header\r\n\r\n", ""),
        (b"From: " + b"a" * 200_000, ""),
    ],
)
def test_reverse_path_of_a_fetched_message(head: bytes, sender: str) -> None:
    assert envelope_sender_of(head) == sender


def test_thread_keys_come_from_ids_and_are_bounded() -> None:
    refs = " ".join(f"<id{n}@x>" for n in range(100))
    raw = f"Message-ID: <new@x>\r\nReferences: {refs}\r\nSubject: Re: hi\r\n\r\nbody".encode()
    criteria = search_criteria(parse_message(raw))
    assert criteria is not None
    [keys], by_id = criteria
    assert by_id and keys.count("HEADER Message-ID") == MAX_IDS
    assert keys.startswith("OR " * (MAX_IDS - 1)) and "<id99@x>" in keys and "<new@x>" not in keys


def test_subject_fallback_only_for_replies_without_ids() -> None:
    reply = parse_message(b"Message-ID: <n@x>\r\nSubject: AW: Re: Invoice 42\r\n\r\nbody")
    assert search_criteria(reply) == (['SUBJECT "Invoice 42"'], False)
    fresh = parse_message(b"Message-ID: <n@x>\r\nSubject: Invoice 42\r\n\r\nbody")
    assert search_criteria(fresh) is None, "a new conversation has no earlier messages"


def test_an_account_never_shows_its_password() -> None:
    account = OpenedAccount(
        mailbox_id=1,
        address="a@b.test",
        imap_host="imap.b.test",
        smtp_host="smtp.b.test",
        login="a",
        password="hunter2-secret",
    )
    assert "hunter2" not in repr(account) and "hunter2" not in str(account)


@pytest.mark.parametrize(
    "env",
    [
        {"MAILHOOK_IMAP_IDLE_RENEW_SECONDS": "1800"},  # past the 29 minutes of RFC 2177
        {"MAILHOOK_IMAP_IDLE_RENEW_SECONDS": "0"},
        {"MAILHOOK_IMAP_LEASE_SECONDS": "0"},
        {"MAILHOOK_IMAP_MAX_CONCURRENT_SYNCS": "0"},
    ],
)
def test_impossible_imap_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="imap"):
        load_settings(env)
