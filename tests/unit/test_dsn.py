"""DSN parsing over a corpus: Postfix, Exchange, Exim-like delays, truncated and garbage reports."""

from __future__ import annotations

import base64

import pytest

from mailhook.mail.dsn import parse_dsn

POSTFIX = b"""\
Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bot@agents.test
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F3A21C0.1732527600/mx.example.net"
Message-Id: <20261125100001.4F3A21C0@mx.example.net>

This is a MIME-encapsulated message.

--4F3A21C0.1732527600/mx.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@example.org>: host mail.example.org[203.0.113.5] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown

--4F3A21C0.1732527600/mx.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 4F3A21C0
X-Postfix-Sender: rfc822; bot@agents.test
Arrival-Date: Wed, 25 Nov 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown

--4F3A21C0.1732527600/mx.example.net
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: Support Bot <bot@agents.test>
To: nobody@example.org
Subject: Re: Question
Message-ID: <abc123@agents.test>
Auto-Submitted: auto-replied

Thanks, we will get back to you.

--4F3A21C0.1732527600/mx.example.net--
"""

EXCHANGE = b"""\
From: postmaster@contoso.com
To: bot@agents.test
Subject: Undeliverable: Re: Question
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="_000_EXCH"

--_000_EXCH
Content-Type: multipart/alternative; boundary="_001_EXCH"

--_001_EXCH
Content-Type: text/plain; charset="us-ascii"

Your message to bob@contoso.com couldn't be delivered.

--_001_EXCH--

--_000_EXCH
Content-Type: message/delivery-status

Reporting-MTA: dns;BN8PR.namprd.prod.outlook.com
Received-From-MTA: dns;mx.agents.test
Arrival-Date: Wed, 25 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822;Bob@Contoso.com
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
X-Display-Name: Bob

--_000_EXCH
Content-Type: text/rfc822-headers

From: Support Bot <bot@agents.test>
To: <bob@contoso.com>
Subject: Re: Question
Message-ID:
 <def456@agents.test>

--_000_EXCH--
"""

DELAYED = b"""\
From: Mail Delivery System <Mailer-Daemon@relay.example.com>
To: bot@agents.test
Subject: Warning: message delayed
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Still trying.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.com

Final-Recipient: rfc822; slow@example.com
Action: delayed
Status: 4.4.7
Diagnostic-Code: smtp; 451 4.4.7 Try again later

Final-Recipient: rfc822; ok@example.com
Action: delivered
Status: 2.0.0

--b1--
"""


def _report(status_part: bytes, *, cte: str = "") -> bytes:
    header = b"Content-Type: message/delivery-status\n" + (
        f"Content-Transfer-Encoding: {cte}\n".encode() if cte else b""
    )
    return (
        b"From: MAILER-DAEMON@x.example\nTo: bot@agents.test\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="z"\n\n'
        b"--z\nContent-Type: text/plain\n\nbounce\n\n--z\n" + header + b"\n" + status_part + b"\n--z--\n"
    )


def test_postfix_hard_bounce() -> None:
    report = parse_dsn(POSTFIX)
    assert report is not None
    assert report.reporting_mta == "mx.example.net"
    assert report.original_message_id == "<abc123@agents.test>"
    [recipient] = report.recipients
    assert recipient.final_recipient == "nobody@example.org"
    assert (recipient.action, recipient.status, recipient.kind) == ("failed", "5.1.1", "hard")
    assert recipient.diagnostic_code.startswith("smtp; 550 5.1.1")
    assert (report.kind, report.status) == ("hard", "5.1.1")


def test_exchange_headers_only_and_folded_message_id() -> None:
    report = parse_dsn(EXCHANGE)
    assert report is not None
    assert report.original_message_id == "<def456@agents.test>"
    [recipient] = report.recipients
    assert (recipient.final_recipient, recipient.status, recipient.kind) == (
        "bob@contoso.com",
        "5.1.10",
        "hard",
    )


def test_delayed_is_soft_and_delivered_is_not_a_failure() -> None:
    report = parse_dsn(DELAYED)
    assert report is not None
    assert [r.kind for r in report.recipients] == ["soft", "none"]
    assert (report.kind, report.status) == ("soft", "4.4.7")
    assert [r.final_recipient for r in report.failed] == ["slow@example.com"]
    assert report.original_message_id is None, "no returned message part"


def test_base64_status_part_and_status_from_diagnostic() -> None:
    status = b"Reporting-MTA: dns; x.example\n\nFinal-Recipient: rfc822; a@b.example\nAction: failed\n"
    status += b"Status: garbage\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\n"
    report = parse_dsn(_report(base64.encodebytes(status), cte="base64"))
    assert report is not None
    [recipient] = report.recipients
    assert (recipient.status, recipient.kind) == ("5.2.2", "hard")


@pytest.mark.parametrize(
    ("action", "kind"), [("failed", "hard"), ("delayed", "soft"), ("delivered", "none"), ("weird", "unknown")]
)
def test_without_status_the_action_decides(action: str, kind: str) -> None:
    status = f"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.example\nAction: {action}\n".encode()
    report = parse_dsn(_report(status))
    assert report is not None and report.recipients[0].kind == kind


def test_truncated_report_still_names_the_message() -> None:
    truncated = POSTFIX[: POSTFIX.index(b"Auto-Submitted: auto-replied\n\nThanks")]
    report = parse_dsn(truncated)
    assert report is not None
    assert report.kind == "hard" and report.original_message_id == "<abc123@agents.test>"


def test_report_without_status_part_is_a_dsn_of_unknown_kind() -> None:
    raw = (
        b"From: MAILER-DAEMON@x\nContent-Type: multipart/report; report-type=delivery-status; boundary=q\n\n"
        b"--q\nContent-Type: text/plain\n\nsorry\n--q--\n"
    )
    report = parse_dsn(raw)
    assert report is not None and report.recipients == () and report.kind == "unknown" and report.status == ""


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x00",
        b"From: alice@example.org\nSubject: hi\n\nplain mail",
        # A read receipt (RFC 8098) is a report too, but not a delivery status.
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n"
        b"--m\nContent-Type: message/disposition-notification\n\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\n--m--\n",
        # A bounce forwarded by a person is that person's message, not a DSN.
        b"Content-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: message/rfc822\n\n"
        + POSTFIX
        + b"\n--f--\n",
    ],
)
def test_not_a_dsn(raw: bytes) -> None:
    assert parse_dsn(raw) is None


def test_hostile_sizes_are_capped() -> None:
    blocks = b"".join(
        f"Final-Recipient: rfc822; u{n}@x.example\nAction: failed\nStatus: 5.0.0\n\n".encode()
        for n in range(500)
    )
    long_field = b"Reporting-MTA: dns; " + b"a" * 100_000 + b"\n\n"
    report = parse_dsn(_report(long_field + blocks))
    assert report is not None
    assert len(report.recipients) == 100 and len(report.reporting_mta) <= 300


def test_deep_nesting_does_not_raise() -> None:
    raw = b"Content-Type: multipart/report; report-type=delivery-status; boundary=a0\n\n"
    for depth in range(300):
        raw += f"--a{depth}\nContent-Type: multipart/mixed; boundary=a{depth + 1}\n\n".encode()
    report = parse_dsn(raw)
    assert report is None or report.kind == "unknown"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_the_report_type_is_read_from_the_header_section_alone(newline: bytes) -> None:
    # LF and CRLF line ends both end the header section at the first empty line.
    report = parse_dsn(POSTFIX.replace(b"\n", newline))
    assert report is not None and report.kind == "hard"
    # A report quoted in the body of ordinary mail (a forwarded bounce) is not this message's.
    forwarded = b"From: alice@example.org\nContent-Type: text/plain\n\n" + POSTFIX
    assert parse_dsn(forwarded.replace(b"\n", newline)) is None
    # Content-Type folded over lines, in another case, after other headers: still a report.
    folded = POSTFIX.replace(
        b"Content-Type: multipart/report; report-type=delivery-status;",
        b"content-TYPE:\n Multipart/Report;\n report-type=delivery-status;",
    )
    assert parse_dsn(folded.replace(b"\n", newline)) is not None
