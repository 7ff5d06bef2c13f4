"""RFC 3834 etiquette: which messages never get an automatic reply, and which do."""

from __future__ import annotations

import pytest

from mailhook.mail.loop_rules import auto_reply_refusal

from .factory import with_defaults

MAILBOX = "agent@mailhook.test"
PERSON = "alice@example.org"


def refusal(*headers: str, envelope: str = PERSON, mailbox: str = MAILBOX) -> str | None:
    return auto_reply_refusal(with_defaults(*headers), envelope_sender=envelope, mailbox_address=mailbox)


def test_an_ordinary_mail_from_a_person_may_be_answered() -> None:
    assert refusal() is None
    assert refusal(envelope=f"<{PERSON.upper()}>") is None


@pytest.mark.parametrize(
    "value",
    ["auto-replied", "auto-generated", "Auto-Generated; owner-email=x@y", "(comment) auto-notified", ""],
)
def test_auto_submitted_other_than_no_is_refused(value: str) -> None:
    assert refusal(f"Auto-Submitted: {value}") == "auto-submitted"


@pytest.mark.parametrize("value", ["no", "NO", " no ; because=human", "no (a person wrote this)"])
def test_auto_submitted_no_is_allowed(value: str) -> None:
    assert refusal(f"Auto-Submitted: {value}") is None


def test_any_of_several_auto_submitted_fields_counts() -> None:
    assert refusal("Auto-Submitted: no", "Auto-Submitted: auto-generated") == "auto-submitted"


@pytest.mark.parametrize("envelope", ["", "<>", "  <>  "])
def test_null_envelope_sender_is_refused(envelope: str) -> None:
    assert refusal(envelope=envelope) == "null-sender"


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.org",
        "mailer-daemon",
        "Postmaster@example.org",
        "noreply@example.org",
        "No-Reply@example.org",
        "do-not-reply@example.org",
        "DoNotReply@example.org",
        "noreply+bounce-123@example.org",
    ],
)
def test_system_senders_are_refused_by_envelope(sender: str) -> None:
    assert refusal(envelope=sender) == "system-sender"


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@mx.example.org", "postmaster@example.org", "no-reply+x@example.org"]
)
def test_system_senders_are_refused_by_from(sender: str) -> None:
    assert refusal(f"From: System <{sender}>") == "system-sender"


@pytest.mark.parametrize("sender", ["noreplyfan@example.org", "reply@example.org", "post@example.org"])
def test_similar_looking_people_are_not_system_senders(sender: str) -> None:
    assert refusal(f"From: {sender}", envelope=sender) is None


@pytest.mark.parametrize("value", ["bulk", "List", "JUNK", "bulk (newsletter)"])
def test_bulk_precedence_is_refused(value: str) -> None:
    assert refusal(f"Precedence: {value}") == "precedence-bulk"


def test_other_precedence_is_allowed() -> None:
    assert refusal("Precedence: first-class") is None


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: Team list <team.lists.example.org>",
        "List-Unsubscribe: <mailto:leave@example.org>",
        "List-Post: <mailto:team@example.org>",
        "List-Help: <https://example.org/help>",
        "List-Subscribe: <mailto:join@example.org>",
        "List-Owner: <mailto:owner@example.org>",
        "List-Archive: <https://example.org/archive>",
        "list-unsubscribe-post: List-Unsubscribe=One-Click",
    ],
)
def test_list_mail_is_refused(header: str) -> None:
    assert refusal(header) == "list-mail"


def test_a_header_merely_mentioning_lists_is_allowed() -> None:
    assert refusal("X-List-Notes: none", "Subject: List-Id of our team") is None


@pytest.mark.parametrize("value", ["All", "OOF", "DR, RN, NRN, OOF, AutoReply", "autoreply"])
def test_auto_response_suppress_is_honoured(value: str) -> None:
    assert refusal(f"X-Auto-Response-Suppress: {value}") == "auto-response-suppressed"


@pytest.mark.parametrize("value", ["DR", "RN, NRN", "None", "ALLOW"])
def test_other_suppress_values_are_allowed(value: str) -> None:
    assert refusal(f"X-Auto-Response-Suppress: {value}") is None


def test_mail_from_our_own_address_is_refused() -> None:
    assert refusal("From: Agent <Agent@Mailhook.Test>") == "own-address"
    assert refusal(envelope="AGENT@mailhook.test") == "own-address"
    assert refusal(mailbox="<Alice@Example.org>") == "own-address"


def test_empty_mailbox_address_does_not_match_a_missing_from() -> None:
    assert refusal("From: undisclosed", mailbox="") is None


def test_rules_are_checked_in_a_fixed_order() -> None:
    reason = refusal("Auto-Submitted: auto-replied", "Precedence: bulk", envelope="<>")
    assert reason == "auto-submitted"
