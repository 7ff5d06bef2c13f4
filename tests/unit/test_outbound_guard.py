"""Seed rules of the outbound guard: each matches what it should and not what it shouldn't."""

from __future__ import annotations

import pytest

from mailhook.guard.outbound import OutboundGuard, luhn_valid


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "cred.private_key"),
        ("key AKIAIOSFODNN7EXAMPLE here", "cred.aws_access_key"),
        ("sk-ant-api03-" + "a" * 30, "cred.anthropic_key"),
        ("ghp_" + "A1" * 18, "cred.github_token"),
        ("card 4111 1111 1111 1111 exp", "pii.card_number"),
        ("server at 192.168.1.20", "internal.private_ip"),
    ],
)
def test_rule_matches(text: str, rule: str) -> None:
    assert rule in {h.rule for h in OutboundGuard().scan_text(text)}


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # fails Luhn
        "call +44 20 7946 0958",
        "BEGIN PUBLIC KEY is fine",
        "AKIA is a prefix",
        "8.8.8.8 is public",
        "Thanks for your message, we will reply soon.",
    ],
)
def test_clean_text_has_no_findings(text: str) -> None:
    assert OutboundGuard().scan_text(text) == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5500 0000 0000 0004")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("1234")


def test_scan_bytes_reads_subject_and_encoded_parts() -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "keys AKIAIOSFODNN7EXAMPLE"
    msg.set_content("card 4111 1111 1111 1111", cte="base64")
    rules = {h.rule for h in OutboundGuard().scan_bytes(msg.as_bytes())}
    assert {"cred.aws_access_key", "pii.card_number"} <= rules
