"""The compose stack's Dovecot config, run for real: IMAP login, LMTP delivery, SASL for Postfix.

These are the three jobs Dovecot has in docker-compose.yml: mail clients log in over IMAP (TLS
only), Postfix delivers hosted mailboxes over LMTP, and Postfix's submission service checks
passwords through Dovecot's auth listener.
"""

from __future__ import annotations

import base64
import imaplib
import os
import smtplib
import socket
import ssl

import pytest

from tests.harness.ports import LOOPBACK
from tests.integration.deploy.conftest import StackDovecot
from tests.lmtp_client import make_message


def tls(server: StackDovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert))


def test_imap_login_needs_tls_and_the_right_password(stack_dovecot: StackDovecot) -> None:
    stack_dovecot.add_user("alice@example.com", "correct horse")
    with imaplib.IMAP4_SSL(LOOPBACK, stack_dovecot.ports["imaps"], ssl_context=tls(stack_dovecot)) as imap:
        assert imap.login("Alice@Example.com", "correct horse")[0] == "OK", "user names are case-folded"
        folders = b" ".join(line for line in imap.list()[1] if isinstance(line, bytes))
        for special in (b"\\Sent", b"\\Drafts", b"\\Junk", b"\\Trash"):
            assert special in folders, "SPECIAL-USE folders mailhook and clients rely on (RFC 6154)"
    with (
        imaplib.IMAP4_SSL(LOOPBACK, stack_dovecot.ports["imaps"], ssl_context=tls(stack_dovecot)) as imap,
        pytest.raises(imaplib.IMAP4.error),
    ):
        imap.login("alice@example.com", "wrong")
    # Port 143 offers STARTTLS. (Dovecot counts loopback clients as secure, so LOGINDISABLED,
    # which remote clients of the container see before STARTTLS, cannot be shown from here.)
    with imaplib.IMAP4(LOOPBACK, stack_dovecot.ports["imap"]) as plain:
        assert "STARTTLS" in plain.capabilities
        plain.starttls(ssl_context=tls(stack_dovecot))
        assert plain.login("alice@example.com", "correct horse")[0] == "OK"


def test_lmtp_delivers_to_a_hosted_mailbox_and_refuses_unknown_users(stack_dovecot: StackDovecot) -> None:
    stack_dovecot.add_user("alice@example.com", "correct horse")
    raw = make_message(to="alice@example.com", subject="hello from postfix", message_id="<d1@example.org>")
    with smtplib.LMTP(LOOPBACK, stack_dovecot.ports["lmtp"], local_hostname="postfix.test") as lmtp:
        refused = lmtp.sendmail("bob@example.org", ["alice@example.com", "nobody@example.com"], raw)
    assert set(refused) == {"nobody@example.com"}
    assert refused["nobody@example.com"][0] == 550, "unknown user: a bounce, not a retry"

    with imaplib.IMAP4_SSL(LOOPBACK, stack_dovecot.ports["imaps"], ssl_context=tls(stack_dovecot)) as imap:
        imap.login("alice@example.com", "correct horse")
        imap.select("INBOX")
        _, ids = imap.search(None, "ALL")
        assert len(ids[0].split()) == 1
        _, data = imap.fetch(ids[0].split()[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
        header = data[0][1] if isinstance(data[0], tuple) else b""
        assert b"hello from postfix" in header and b"<d1@example.org>" in header


def sasl(port: int, login: str, password: str) -> str:
    """One PLAIN authentication over Dovecot's auth protocol, as Postfix smtpd does it."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.write(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode())
        stream.flush()
        handshake = []
        while (line := stream.readline().decode().rstrip("\n")) != "DONE":
            handshake.append(line)
        assert any(line.startswith("MECH\tPLAIN") for line in handshake), handshake
        response = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        stream.write(f"AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp={response}\n".encode())
        stream.flush()
        return stream.readline().decode().strip()


def test_submission_sasl_listener_checks_passwords(stack_dovecot: StackDovecot) -> None:
    stack_dovecot.add_user("alice@example.com", "correct horse")
    assert sasl(stack_dovecot.ports["sasl"], "alice@example.com", "correct horse").startswith("OK\t1")
    assert sasl(stack_dovecot.ports["sasl"], "alice@example.com", "wrong").startswith("FAIL\t1")
