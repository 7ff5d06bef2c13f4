"""Outbound guard: every rule matches what it should and not what it should not; scan_message
reads subject, text, HTML and attachments; the owner's allow-list and internal host names work.
"""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailhook.guard.checksums import iban_valid, luhn_valid, ssn_valid, steuer_id_valid
from mailhook.guard.outbound import ATTACHMENT_RULES, HIGH, MEDIUM, RULES, OutboundGuard

HOSTS = ("db1.corp.example.com", "*.int.example.net")


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


JWT = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
NOT_JWT = f"{_b64({'typ': 'none', 'kid': 'x1'})}.{_b64({'sub': '1'})}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
SEED = "abandon ability able about above absent absorb abstract absurd abuse access accident"

# (rule id, text that must match it). Several rows per rule cover its alternatives.
MATCHING = [
    ("cred.private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE"),
    ("cred.private_key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("cred.private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----"),
    ("cred.aws_access_key", "key AKIAIOSFODNN7EXAMPLE here"),
    ("cred.aws_access_key", "ASIAY34FZKBOKMUTVV7A"),
    ("cred.aws_secret_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("cred.github_token", "ghp_" + "A1" * 18),
    ("cred.github_token", "github_pat_" + "a" * 22 + "_" + "b" * 59),
    ("cred.gitlab_token", "glpat-" + "xY3" * 7),
    ("cred.npm_token", "npm_" + "a1B2" * 9),
    ("cred.stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("cred.stripe_key", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("cred.slack_token", "xoxb-123456789012-abcdefGHIJKL"),
    ("cred.webhook_url", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("cred.webhook_url", "https://discord.com/api/webhooks/123456/abcdefghijklmnopqrstuvwxyz"),
    ("cred.google_api_key", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
    ("cred.anthropic_key", "sk-ant-api03-" + "a1" * 15),
    ("cred.openai_key", "sk-proj-" + "Ab1" * 12),
    ("cred.openai_key", "sk-" + "T3BlbkFJ" * 5),
    ("cred.sendgrid_key", "SG." + "a1" * 11 + "." + "b" * 43),
    ("cred.huggingface_token", "hf_" + "aB3" * 12),
    ("cred.jwt", f"token {JWT} end"),
    ("cred.bearer_token", "Authorization: Bearer abcDEF123456ghiJKL7890"),
    ("cred.connection_string", "postgres://app:s3cret@db.example.com:5432/app"),
    ("cred.connection_string", "mongodb+srv://admin:Pa55w0rd@cluster0.example.net"),
    ("cred.connection_string", "redis://:hunter2x@cache:6379"),
    ("cred.url_credentials", "https://deploy:gh0stT0ken@git.example.com/repo.git"),
    ("cred.password", "Password: hunter2"),
    ("cred.password", "Your password is: correcthorse\nThanks"),
    ("cred.password", '{"password": "s3cr3t!"}'),
    ("cred.password", "login?user=bob&pwd=Tr0ub4dor"),
    ("cred.secret_assignment", "API_KEY=8f14e45fceea167a5a36dedd4bea2543"),
    ("cred.secret_assignment", "client_secret: 'a1b2c3d4e5f6g7h8'"),
    ("cred.env_block", "DB_HOST=db\nDB_USER=app\nDEBUG=true\n"),
    ("cred.env_block", "export AWS_REGION=eu-west-1\nexport BUCKET=x\nexport STAGE=prod"),
    ("cred.seed_phrase", f"My seed phrase is: {SEED}"),
    ("cred.seed_phrase", "Recovery words:\n" + "\n".join(f"{i}. {w}" for i, w in enumerate(SEED.split(), 1))),
    ("cred.seed_phrase", f"{SEED} {SEED}"),
    ("cred.backup_codes", "Your backup codes:\n1234 5678\n2345 6789\n3456 7890\n4567 8901"),
    ("pii.card_number", "card 4111 1111 1111 1111 exp"),
    ("pii.card_number", "5500-0000-0000-0004"),
    ("pii.card_number", "amex 378282246310005"),
    ("pii.iban", "DE89 3704 0044 0532 0130 00"),
    ("pii.iban", "IBAN GB82WEST12345698765432, thanks"),
    ("pii.iban", "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX"),
    ("pii.ssn", "SSN 536-22-1234"),
    ("pii.ssn", "social security number 536 22 1234"),
    ("pii.phone", "call +44 20 7946 0958"),
    ("pii.phone", "+1 (415) 555-0132"),
    ("pii.phone", "(555) 123-4567"),
    ("pii.phone", "Tel: 030 1234567"),
    ("pii.passport", "Passport number: X12345678"),
    ("pii.passport", "PASSPORT NUMBER: 533380006"),
    ("pii.ein", "EIN: 12-3456789"),
    ("pii.itin", "ITIN 912-70-1234"),
    ("pii.de_tax_id", "Steuer-ID: 86 095 742 719"),
    ("pii.de_tax_id", "Steuerliche Identifikationsnummer 65929970489"),
    ("pii.uk_nino", "NI number AB 12 34 56 C"),
    ("pii.uk_nino", "JG103759A"),
    ("internal.private_ip", "server at 192.168.1.20"),
    ("internal.private_ip", "10.0.0.5."),
    ("internal.private_ip", "172.16.4.1"),
    ("internal.private_ip", "http://127.0.0.1:8080/"),
    ("internal.private_ip", "metadata at 169.254.169.254"),
    ("internal.private_ip", "fd12:3456:789a::1"),
    ("internal.private_ip", "the fe80::1 link"),
    ("internal.private_hostname", "jenkins.corp"),
    ("internal.private_hostname", "printer at nas.local today"),
    ("internal.private_hostname", "build01.acme.internal"),
    ("internal.private_hostname", "router.home.arpa"),
    ("internal.file_path", "edit /etc/nginx/nginx.conf"),
    ("internal.file_path", "/home/alice/notes.txt"),
    ("internal.file_path", "C:\\Users\\alice\\Desktop"),
    ("internal.file_path", "\\\\fileserver\\share"),
    ("internal.file_path", "~/.aws/credentials"),
    ("internal.hostname", "connect to db1.corp.example.com now"),
    ("internal.hostname", "DB1.Corp.Example.COM"),
    ("internal.hostname", "vault.int.example.net"),
]

# (rule id, text that must not match it).
NOT_MATCHING = [
    ("cred.private_key", "-----BEGIN PUBLIC KEY-----"),
    ("cred.private_key", "BEGIN PRIVATE KEY without the armour"),
    ("cred.aws_access_key", "AKIA is a prefix"),
    ("cred.aws_access_key", "XAKIAIOSFODNN7EXAMPLE"),
    ("cred.aws_secret_key", "aws_secret_access_key = <your key here>"),
    ("cred.github_token", "ghp_short"),
    ("cred.github_token", "ghx_" + "A1" * 18),
    ("cred.gitlab_token", "glpat-short"),
    ("cred.npm_token", "npm_install_guide"),
    ("cred.stripe_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    ("cred.slack_token", "xoxz-123456789012-abcdef"),
    ("cred.webhook_url", "https://hooks.slack.com/ is where they live"),
    ("cred.google_api_key", "AIza is Google's prefix"),
    ("cred.anthropic_key", "sk-ant-short"),
    ("cred.openai_key", "sk-this-is-a-long-kebab-case-identifier-name"),
    ("cred.openai_key", "sk-ant-api03-" + "a1" * 20),
    ("cred.sendgrid_key", "SG.short.key"),
    ("cred.huggingface_token", "hf_short"),
    ("cred.jwt", f"token {NOT_JWT} end"),
    ("cred.jwt", "eyeballing.the.numbers"),
    ("cred.bearer_token", "the bearer of this letter is authorised to collect the parcel"),
    ("cred.connection_string", "postgres://db.example.com:5432/app"),
    ("cred.connection_string", "postgres://user:password@localhost/app"),
    ("cred.url_credentials", "https://example.com:8443/path"),
    ("cred.password", "Password: please reset it via the link"),
    ("cred.password", "password: ********"),
    ("cred.password", "Forgot your password? Click here."),
    ("cred.password", "password: <your password>"),
    ("cred.secret_assignment", "API_KEY=<your key here>"),
    ("cred.secret_assignment", "STRIPE_SECRET=changeme"),
    ("cred.env_block", "DB_HOST=db\nDB_USER=app\n"),
    ("cred.env_block", "a=1\nb=2\nc=3"),
    ("cred.seed_phrase", "Our seed round closed last week and we are hiring engineers again."),
    ("cred.seed_phrase", "seed phrase: " + " ".join(SEED.split()[:11])),
    ("cred.backup_codes", "Backup codes can be generated in your account settings."),
    ("pii.card_number", "order 4111 1111 1111 1112 shipped"),
    ("pii.card_number", "0000 0000 0000 0000"),
    ("pii.iban", "DE89 3704 0044 0532 0130 01"),
    ("pii.iban", "GB82 WEST 1234"),
    ("pii.ssn", "000-12-3456"),
    ("pii.ssn", "666-12-3456"),
    ("pii.ssn", "900-12-3456"),
    ("pii.ssn", "536-00-1234"),
    ("pii.ssn", "536-22-0000"),
    ("pii.ssn", "078-05-1120"),
    ("pii.phone", "version 1.2.3 of 2024-01-15"),
    ("pii.phone", "+1 555"),
    ("pii.phone", "ISBN 978-3-16-148410-0"),
    ("pii.passport", "Please bring your passport to the meeting."),
    ("pii.passport", "passport photo 35x45"),
    ("pii.ein", "EIN: 07-3456789"),
    ("pii.ein", "12-3456789 has no label"),
    ("pii.itin", "912-69-1234"),
    ("pii.de_tax_id", "Steuer-ID: 86095742718"),
    ("pii.de_tax_id", "86095742719 has no label"),
    ("pii.uk_nino", "GB123456A"),
    ("pii.uk_nino", "AB 12 34 56 E"),
    ("internal.private_ip", "8.8.8.8 is public"),
    ("internal.private_ip", "172.32.0.1"),
    ("internal.private_ip", "release v10.1.2.3"),
    ("internal.private_ip", "999.168.1.1"),
    ("internal.private_ip", "2001:4860:4860::8888"),
    ("internal.private_hostname", "the local library"),
    ("internal.private_hostname", "corp.example.com"),
    ("internal.file_path", "https://example.com/home/page"),
    ("internal.file_path", "and/or 24/7 support"),
    ("internal.hostname", "db10.corp.example.com"),
    ("internal.hostname", "int.example.net"),
    ("internal.hostname", "example.com"),
]


def _rules(text: str) -> set[str]:
    return {hit.rule for hit in OutboundGuard(internal_hostnames=HOSTS).scan_text(text)}


@pytest.mark.parametrize(("rule", "text"), MATCHING)
def test_rule_matches(rule: str, text: str) -> None:
    assert rule in _rules(text)


@pytest.mark.parametrize(("rule", "text"), NOT_MATCHING)
def test_rule_does_not_match(rule: str, text: str) -> None:
    assert rule not in _rules(text)


def test_every_rule_has_both_kinds_of_case() -> None:
    ids = {rule.id for rule in RULES} | {"internal.hostname"}
    assert ids <= {rule for rule, _ in MATCHING}
    assert ids <= {rule for rule, _ in NOT_MATCHING}


def test_every_rule_has_a_known_severity_and_unique_id() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert {rule.severity for rule in RULES} <= {HIGH, MEDIUM}
    assert set(ATTACHMENT_RULES.values()) == {HIGH}


@pytest.mark.parametrize(
    "text",
    [
        "Thanks for your message, we will reply soon.",
        "Hi Bob,\n\nThe meeting is moved to Thursday 10:30. See https://example.com/agenda.\n\nBest, Ann",
        "Invoice 2024-0042 for EUR 1,250.00 is due on 15 March.",
    ],
)
def test_ordinary_replies_have_no_findings(text: str) -> None:
    assert OutboundGuard().scan_text(text) == []


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5500 0000 0000 0004")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("1234")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert ssn_valid("536-22-1234")
    assert not ssn_valid("666-22-1234")
    assert steuer_id_valid("86095742719")
    assert not steuer_id_valid("12345678901")  # no repeated digit


def test_allow_list_skips_rule_ids_and_families() -> None:
    text = "Call +44 20 7946 0958 or visit 192.168.1.20"
    assert {h.rule for h in OutboundGuard(allow=["pii.phone"]).scan_text(text)} == {"internal.private_ip"}
    assert {h.rule for h in OutboundGuard(allow=["internal.*"]).scan_text(text)} == {"pii.phone"}


def test_allow_list_literal_ignores_formatting_but_not_other_values() -> None:
    guard = OutboundGuard(allow=["+44 (20) 7946-0958"])
    assert guard.scan_text("Our support line: +44 20 7946 0958") == []
    assert [h.rule for h in guard.scan_text("Call +44 20 7946 0958 or +44 20 7946 0999")] == ["pii.phone"]


def test_internal_hostnames_are_high_and_only_when_configured() -> None:
    assert OutboundGuard().scan_text("db1.corp.example.com") == []
    hits = OutboundGuard(internal_hostnames=HOSTS).scan_text("db1.corp.example.com")
    assert [(h.rule, h.severity) for h in hits] == [("internal.hostname", HIGH)]
    assert OutboundGuard(internal_hostnames=[" ", ""]).scan_text("db1.corp.example.com") == []


def _multipart() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "agent@example.com"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "Your request"
    msg.set_content("Please see the HTML version.")
    return msg


def _rules_of(msg: EmailMessage, guard: OutboundGuard | None = None) -> set[str]:
    return {h.rule for h in (guard or OutboundGuard()).scan_message(msg.as_bytes())}


def test_scan_message_reads_html_only_secret_visible_or_hidden() -> None:
    msg = _multipart()
    msg.add_alternative(
        "<p>Hello</p><p>key AKIAIOSFODNN7EXAMPLE</p>"
        '<div style="display:none">sk_live_4eC39HqLyjWDarjtT1zdp7dc</div>'
        '<a href="https://deploy:gh0stT0ken@git.example.com/">repo</a>',
        subtype="html",
    )
    assert {"cred.aws_access_key", "cred.stripe_key", "cred.url_credentials"} <= _rules_of(msg)


def test_scan_message_decodes_base64_text_attachment() -> None:
    msg = _multipart()
    msg.add_attachment(
        b"notes\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n",
        maintype="text",
        subtype="plain",
        filename="notes.txt",
    )
    raw = msg.as_bytes()
    assert b"BEGIN EC PRIVATE KEY" not in raw  # really transfer-encoded
    assert "cred.private_key" in {h.rule for h in OutboundGuard().scan_message(raw)}


def test_scan_message_sniffs_text_in_a_renamed_file() -> None:
    msg = _multipart()
    msg.add_attachment(
        b"aws AKIAIOSFODNN7EXAMPLE\n", maintype="application", subtype="octet-stream", filename="x.dat"
    )
    assert "cred.aws_access_key" in _rules_of(msg)


@pytest.mark.parametrize(
    ("filename", "data", "rule"),
    [
        ("deploy.pem", b"x", "attach.secret_file"),
        (".env.production", b"x", "attach.secret_file"),
        ("id_ed25519", b"x", "attach.secret_file"),
        ("vault.kdbx", b"x", "attach.secret_file"),
        ("customers.sqlite", b"x", "attach.database"),
        ("dump.sql", b"x", "attach.database"),
        ("setup.exe", b"x", "attach.executable"),
        ("run.ps1", b"x", "attach.executable"),
        ("report.bin", b"MZ\x90\x00", "attach.executable"),
        ("invoice.pdf.exe", b"x", "attach.double_extension"),
        ("invoice\u202efdp.exe", b"x", "attach.double_extension"),
    ],
)
def test_scan_message_flags_risky_attachments(filename: str, data: bytes, rule: str) -> None:
    msg = _multipart()
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    assert rule in _rules_of(msg)
    assert rule not in _rules_of(msg, OutboundGuard(allow=[filename]))


@pytest.mark.parametrize("filename", ["report.pdf", "photo.jpg", "archive.tar.gz", "report.final.pdf"])
def test_scan_message_lets_ordinary_attachments_through(filename: str) -> None:
    msg = _multipart()
    msg.add_attachment(b"%PDF-1.7\x00\x01", maintype="application", subtype="octet-stream", filename=filename)
    assert not {rule for rule in _rules_of(msg) if rule.startswith("attach.")}


def test_scan_message_reads_forwarded_messages() -> None:
    inner = EmailMessage()
    inner["Subject"] = "fwd"
    inner.set_content("card 4111 1111 1111 1111", cte="base64")
    msg = _multipart()
    msg.add_attachment(inner)
    assert "pii.card_number" in _rules_of(msg)


def test_scan_message_scans_headerless_bytes_as_text() -> None:
    assert [h.rule for h in OutboundGuard().scan_message(b"\n\nkey AKIAIOSFODNN7EXAMPLE")] == [
        "cred.aws_access_key"
    ]


def test_scan_bytes_is_scan_message() -> None:
    msg = EmailMessage()
    msg["Subject"] = "keys AKIAIOSFODNN7EXAMPLE"
    msg.set_content("card 4111 1111 1111 1111", cte="base64")
    hits = OutboundGuard().scan_bytes(msg.as_bytes())
    assert {"cred.aws_access_key", "pii.card_number"} <= {h.rule for h in hits}
    assert len(hits) == len({h.rule for h in hits})  # each rule once


def test_every_rule_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "guard.md").read_text(encoding="utf-8")
    ids = {rule.id for rule in RULES} | set(ATTACHMENT_RULES) | {"internal.hostname"}
    assert not {rule for rule in ids if f"| `{rule}` |" not in doc}
