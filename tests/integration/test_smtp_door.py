"""The SMTP door: SIZE (RFC 1870), STARTTLS (RFC 3207) with a configured certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailhook.services import Services
from tests.harness.ports import free_port
from tests.lmtp_client import make_message
from tests.support import wait_for_jobs


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def extra_env(tmp_path: Path) -> dict[str, str]:
    cert, key = self_signed(tmp_path)
    return {
        "MAILHOOK_SMTP_ENABLED": "true",
        "MAILHOOK_SMTP_PORT": str(free_port()),
        "MAILHOOK_SMTP_TLS_CERT": str(cert),
        "MAILHOOK_SMTP_TLS_KEY": str(key),
        "MAILHOOK_SMTP_REQUIRE_TLS": "true",
        "MAILHOOK_SMTP_MAX_MESSAGE_BYTES": "50000",
    }


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_starttls_required_then_accepted(services: Services, runtime: Any) -> None:
    port = services.settings.smtp.port

    def talk() -> tuple[Any, ...]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            features = dict(smtp.esmtp_features)
            plain_mail = smtp.mail("a@example.org")
            smtp.rset()
            smtp.starttls(context=client_context())
            smtp.ehlo("client.test")
            refused = smtp.sendmail("a@example.org", ["bot@agents.test"], make_message())
            return features, plain_mail, refused

    features, plain_mail, refused = await asyncio.to_thread(talk)
    assert "starttls" in features and features["size"] == "50000"
    assert plain_mail[0] == 530, "MAIL before STARTTLS is refused when TLS is required"
    assert refused == {}
    await wait_for_jobs(services, 1)


async def test_size_limit(services: Services, runtime: Any) -> None:
    port = services.settings.smtp.port

    def talk() -> tuple[Any, Any]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=client_context())
            smtp.ehlo("client.test")
            declared = smtp.mail("a@example.org", ["SIZE=900000"])
            smtp.rset()
            # A client that does not declare SIZE is stopped at the end of DATA instead.
            smtp.mail("a@example.org")
            smtp.rcpt("bot@agents.test")
            code, _ = smtp.data(make_message(body=("q" * 70 + "\n") * 1000))
            return declared, code

    declared, data_code = await asyncio.to_thread(talk)
    assert declared[0] == 552
    assert data_code == 552


async def test_unknown_recipient_and_single_reply(services: Services, runtime: Any) -> None:
    port = services.settings.smtp.port

    def talk() -> Any:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=client_context())
            smtp.ehlo("client.test")
            return smtp.sendmail("a@example.org", ["bot@agents.test", "ghost@agents.test"], make_message())

    refused = await asyncio.to_thread(talk)
    assert list(refused) == ["ghost@agents.test"] and refused["ghost@agents.test"][0] == 550
    await wait_for_jobs(services, 1)
