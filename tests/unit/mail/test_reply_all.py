"""Reply recipients: Reply-To over From, reply-all copies, never ourselves."""

from __future__ import annotations

from mailhook.mail.reply_all import Recipients, reply_recipients

from .factory import message, with_defaults

MAILBOX = "agent@mailhook.test"


def test_reply_goes_to_from_when_there_is_no_reply_to() -> None:
    recipients = reply_recipients(with_defaults(), mailbox_address=MAILBOX)
    assert recipients == Recipients(to=("alice@example.org",), cc=())


def test_reply_to_replaces_from() -> None:
    msg = with_defaults("Reply-To: Desk <Desk@Example.org>, team@example.org")
    recipients = reply_recipients(msg, mailbox_address=MAILBOX)
    assert recipients.to == ("desk@example.org", "team@example.org")
    assert "alice@example.org" not in recipients.all


def test_reply_all_copies_to_and_cc_without_ourselves_or_duplicates() -> None:
    msg = with_defaults(
        "To: Agent <AGENT@mailhook.test>, bob@example.org, Alice <alice@example.org>",
        "Cc: carol@example.org, Bob@Example.org, sales@mailhook.test, help@mailhook.test",
    )
    recipients = reply_recipients(
        msg, mailbox_address=MAILBOX, own_aliases=["Sales@Mailhook.test", "<help@mailhook.test>"]
    )
    assert recipients.to == ("alice@example.org",)
    assert recipients.cc == ("bob@example.org", "carol@example.org")
    assert recipients.all == ("alice@example.org", "bob@example.org", "carol@example.org")


def test_reply_all_off_answers_only_the_author() -> None:
    msg = with_defaults("Cc: carol@example.org")
    assert reply_recipients(msg, mailbox_address=MAILBOX, reply_all=False) == Recipients(
        to=("alice@example.org",), cc=()
    )


def test_reply_to_pointing_at_ourselves_is_dropped() -> None:
    msg = with_defaults("Reply-To: agent@mailhook.test, desk@example.org")
    assert reply_recipients(msg, mailbox_address="Agent@Mailhook.Test").to == ("desk@example.org",)


def test_nobody_to_answer_gives_no_recipients_at_all() -> None:
    msg = message("To: agent@mailhook.test", "Cc: carol@example.org", "Subject: anonymous")
    assert reply_recipients(msg, mailbox_address=MAILBOX) == Recipients(to=(), cc=())
    only_us = with_defaults("Reply-To: agent@mailhook.test", "From: Agent <agent@mailhook.test>")
    assert reply_recipients(only_us, mailbox_address=MAILBOX).all == ()


def test_huge_recipient_lists_are_deduplicated() -> None:
    to = ", ".join(f"p{i % 100}@example.org" for i in range(10_000))
    recipients = reply_recipients(with_defaults(f"To: {to}", f"Cc: {to.upper()}"), mailbox_address=MAILBOX)
    assert len(recipients.cc) == 100
    assert len(set(recipients.all)) == len(recipients.all)
