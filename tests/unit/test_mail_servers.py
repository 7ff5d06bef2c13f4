"""The one server-settings type: checks, normal form, and a password that never shows in a repr."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.errors import ValidationFailed
from mailhook.net.names import host_name
from mailhook.store.servers import ExternalAccount, MailServers

SECRET = "correct horse battery staple"


def _account(**overrides: object) -> ExternalAccount:
    fields: dict[str, object] = {
        "address": "ann@example.org",
        "imap_host": " IMAP.Example.org. ",
        "smtp_host": "smtp.example.org",
        "login": "  ann@example.org ",
        "password": SECRET,
    }
    return ExternalAccount(**(fields | overrides))  # type: ignore[arg-type]


def test_checked_normalises_hosts_trims_the_login_and_keeps_the_password_as_typed() -> None:
    account = _account(password=f" {SECRET} ").checked()
    assert (account.imap_host, account.imap_port, account.smtp_port) == ("imap.example.org", 993, 465)
    assert account.login == "ann@example.org"
    assert account.password == f" {SECRET} "
    assert isinstance(account, ExternalAccount) and account.address == "ann@example.org"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"imap_host": "bad host"}, "imap_host must be a host name or an IP address"),
        ({"smtp_host": "10.0.0.1.5"}, "smtp_host must be a host name or an IP address"),
        ({"smtp_port": 0}, "smtp_port must be between 1 and 65535"),
        ({"imap_port": 65536}, "imap_port must be between 1 and 65535"),
        ({"login": "   "}, "login and password are required"),
        ({"password": ""}, "login and password are required"),
        ({"password": "x" * 5000}, "password must be at most 4,096 characters"),
        ({"login": "ann\x00"}, "login must not contain NUL characters"),
    ],
)
def test_checked_refuses_each_bad_field_by_name(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        _account(**overrides).checked()


def test_ip_addresses_are_kept_in_their_normal_form() -> None:
    account = _account(imap_host="2001:DB8::0:1", smtp_host="192.0.2.7.").checked()
    assert (account.imap_host, account.smtp_host) == ("2001:db8::1", "192.0.2.7")


def test_no_repr_shows_the_password() -> None:
    opened = OpenedAccount.of(_account(), mailbox_id=7)
    for value in (_account(), MailServers.of(_account()), opened):
        assert SECRET not in repr(value) and SECRET not in str(value)
    assert repr(opened) == "OpenedAccount(mailbox_id=7, address='ann@example.org')"


def test_of_reads_same_named_attributes_and_given_fields_win() -> None:
    row = SimpleNamespace(
        address="bob@example.net", imap_host="imap.example.net", imap_port=143, smtp_host="smtp.example.net",
        smtp_port=587, login="bob", password_sealed=b"...", poll_interval_minutes=60, id=3,
    )  # fmt: skip
    opened = OpenedAccount.of(row, mailbox_id=row.id, password=SECRET)
    assert (opened.imap_port, opened.smtp_port, opened.poll_interval_minutes) == (143, 587, 60)
    assert (opened.mailbox_id, opened.password, opened.paused_for_login) == (3, SECRET, False)
    with pytest.raises(TypeError):
        OpenedAccount.of(row)  # no mailbox id: a missing field is an error, not a default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail.Example.ORG.", "mail.example.org"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("intranet", "intranet"),
        ("-bad.example", None),
        ("bad-.example", None),
        ("under_score.example", None),
        ("192.0.2.1", None),
        ("a" * 64 + ".example", None),
        (".".join(["abcdefghi"] * 26), None),  # 259 characters
        ("", None),
        ("two..dots", None),
    ],
)
def test_host_name_syntax(text: str, expected: str | None) -> None:
    assert host_name(text) == expected
