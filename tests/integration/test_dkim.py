"""Replies are DKIM-signed (RFC 6376) when the domain has a key, and the signature verifies."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.models import OutboxMessage
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def extra_env(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "dkim"
    keys.mkdir()
    pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (keys / "agents.test.pem").write_bytes(pem)
    return {"MAILHOOK_DKIM_KEY_DIR": str(keys), "MAILHOOK_DKIM_SELECTOR": "s1"}


def dns_txt(name: bytes, timeout: int = 5) -> bytes | None:
    if name != b"s1._domainkey.agents.test.":
        return None
    der = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


async def test_reply_is_signed_and_verifies(services: Services, runtime: Any) -> None:
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message())
    await wait_for_jobs(services, 1)
    async with services.sessions() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None
    signed = services.sealer.open(row.sealed_message)
    assert signed.startswith(b"DKIM-Signature:")
    assert b"d=agents.test" in signed and b"s=s1" in signed
    assert dkim.verify(signed, dnsfunc=dns_txt)
    tampered = signed.replace(b"Thanks, we will get back", b"Thanks, we will NOT get back")
    assert not dkim.verify(tampered, dnsfunc=dns_txt)
