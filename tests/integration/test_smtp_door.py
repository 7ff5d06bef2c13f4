"""The SMTP door: SIZE (RFC 1870), STARTTLS (RFC 3207) with a configured certificate."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest

from mailhook.services import Services
from tests.certs import self_signed
from tests.harness.ports import free_port
from tests.lmtp_client import make_message
from tests.support import wait_for_jobs


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
