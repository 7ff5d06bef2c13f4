"""Threading: reply subjects, In-Reply-To/References (RFC 5322 §3.6.4) and thread lookup ids."""

from __future__ import annotations

import pytest

from mailhook.mail.thread import MAX_REFERENCES, reply_subject, thread_ids, threading_headers

from .factory import DEFAULT_HEADERS, message, with_defaults


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "Re: Hello"),
        ("Re: Hello", "Re: Hello"),
        ("RE: re: Re:Hello", "Re: Hello"),
        ("Aw: Hello", "Re: Hello"),
        ("SV: Hei", "Re: Hei"),
        ("Re[2]: Hello", "Re: Hello"),
        ("RE (3): Hello", "Re: Hello"),
        ("回复\uff1a你好", "Re: 你好"),  # full-width colon
        ("Fwd: Hello", "Re: Fwd: Hello"),
        ("Re: Fwd: Re: Hello", "Re: Fwd: Re: Hello"),
        ("Regarding: plans", "Re: Regarding: plans"),
        ("Reply needed", "Re: Reply needed"),
        ("", "Re:"),
        ("Re: ", "Re:"),
        ("Hi\r\nBcc: x@y", "Re: Hi Bcc: x@y"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_reply_to_a_first_message_references_only_it() -> None:
    assert threading_headers(with_defaults()) == ("<m1@example.org>", ("<m1@example.org>",))


def test_references_are_extended_with_the_parent_id() -> None:
    parent = with_defaults("References: <root@x> <mid@x>", "In-Reply-To: <mid@x>")
    assert threading_headers(parent) == ("<m1@example.org>", ("<root@x>", "<mid@x>", "<m1@example.org>"))


def test_single_in_reply_to_stands_in_for_missing_references() -> None:
    parent = with_defaults("In-Reply-To: <prev@x>")
    assert threading_headers(parent)[1] == ("<prev@x>", "<m1@example.org>")


def test_in_reply_to_with_several_ids_is_not_used() -> None:
    parent = with_defaults("In-Reply-To: <a@x> <b@x>")
    assert threading_headers(parent)[1] == ("<m1@example.org>",)


def test_parent_without_message_id() -> None:
    headers = [h for h in DEFAULT_HEADERS if not h.startswith("Message-ID")]
    assert threading_headers(message(*headers)) == (None, ())
    assert threading_headers(message(*headers, "References: <r@x>")) == (None, ("<r@x>",))


def test_parent_id_is_not_repeated_if_already_referenced() -> None:
    parent = with_defaults("References: <root@x> <m1@example.org>")
    assert threading_headers(parent)[1] == ("<root@x>", "<m1@example.org>")


def test_references_are_capped_keeping_the_root() -> None:
    refs = " ".join(f"<r{i}@x>" for i in range(50))
    _, references = threading_headers(with_defaults(f"References: {refs}"))
    assert len(references) == MAX_REFERENCES
    assert references[0] == "<r0@x>"
    assert references[1] == "<r32@x>"  # root + the 19 most recent of 51 ids
    assert references[-2:] == ("<r49@x>", "<m1@example.org>")


def test_thread_ids_collects_every_id_once() -> None:
    msg = with_defaults("References: <root@x> <mid@x>", "In-Reply-To: <mid@x>")
    assert thread_ids(msg) == ("<root@x>", "<mid@x>", "<m1@example.org>")
    bare = message("From: a@x.org", "Subject: no ids")
    assert thread_ids(bare) == ()
