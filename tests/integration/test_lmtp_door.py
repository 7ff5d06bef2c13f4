"""The LMTP door speaks RFC 2033 correctly on every path, against a real socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from sqlalchemy import func, select

from mailhook.services import Services
from mailhook.store.accounts import Accounts
from mailhook.store.models import SpoolJob
from tests.lmtp_client import LmtpClient, lmtp_send, make_message

SMALL = {"MAILHOOK_LMTP_MAX_MESSAGE_BYTES": "20000", "MAILHOOK_LMTP_MAX_CONNECTIONS": "3"}


async def jobs(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SpoolJob)) or 0)


async def second_mailbox(services: Services) -> None:
    await Accounts(services.sessions).add_mailbox("owner@example.com", "sales@agents.test")


def client(services: Services) -> LmtpClient:
    return LmtpClient("127.0.0.1", services.settings.lmtp.port)


async def test_lhlo_advertises_pipelining_and_enhanced_codes(services: Services, runtime: Any) -> None:
    def talk() -> tuple[str, str, str]:
        with client(services) as c:
            return c.lhlo, c.command("HELO x"), c.command("EHLO x")

    lhlo, helo, ehlo = await asyncio.to_thread(talk)
    assert "PIPELINING" in lhlo and "ENHANCEDSTATUSCODES" in lhlo and "8BITMIME" in lhlo
    assert helo.startswith("500") and ehlo.startswith("500")


async def test_unknown_recipient_refused_at_rcpt(services: Services, runtime: Any) -> None:
    result = await asyncio.to_thread(
        lmtp_send,
        services.settings.lmtp.port,
        "a@example.org",
        ["nobody@agents.test", "bot@agents.test", "BOT+sales@Agents.Test"],
        make_message(),
    )
    assert result.rcpt["nobody@agents.test"].startswith("550 5.1.1")
    assert result.rcpt["bot@agents.test"].startswith("250")
    assert result.rcpt["BOT+sales@Agents.Test"].startswith("250"), "case and +tag resolve"
    assert list(result.data) == ["bot@agents.test", "BOT+sales@Agents.Test"]
    assert result.data["bot@agents.test"].startswith("250 2.0.0")
    # Same mailbox twice in one transaction: one job, the second is a duplicate.
    assert result.data["BOT+sales@Agents.Test"].startswith("250 2.0.0 Already")
    assert await jobs(services) == 1


@pytest.mark.parametrize("extra_env", [SMALL])
async def test_oversize_gets_one_reply_per_recipient(services: Services, runtime: Any) -> None:
    await second_mailbox(services)

    def talk() -> tuple[Any, Any]:
        with client(services) as c:
            big = c.send(
                "a@example.org",
                ["bot@agents.test", "nobody@agents.test", "sales@agents.test"],
                make_message(body=("y" * 70 + "\n") * 400),
            )
            after = c.send("a@example.org", ["bot@agents.test"], make_message())
            return big, after

    big, after = await asyncio.to_thread(talk)
    assert big.rcpt["nobody@agents.test"].startswith("550 5.1.1")
    assert [r[:9] for r in big.data.values()] == ["552 5.3.4", "552 5.3.4"]
    assert after.data["bot@agents.test"].startswith("250"), "the session is still in sync"
    assert await jobs(services) == 1


async def test_line_too_long_gets_one_reply_per_recipient(services: Services, runtime: Any) -> None:
    await second_mailbox(services)

    def talk() -> Any:
        with client(services) as c:
            return c.send(
                "a@example.org", ["bot@agents.test", "sales@agents.test"], make_message(body="z" * 5000)
            )

    result = await asyncio.to_thread(talk)
    assert [r[:9] for r in result.data.values()] == ["500 5.6.0", "500 5.6.0"]
    assert await jobs(services) == 0


async def test_spool_crash_is_temporary_for_every_recipient(
    services: Services, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await second_mailbox(services)

    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.spool, "enqueue", explode)
    result = await asyncio.to_thread(
        lmtp_send,
        services.settings.lmtp.port,
        "a@example.org",
        ["bot@agents.test", "sales@agents.test"],
        make_message(),
    )
    assert [r[:9] for r in result.data.values()] == ["451 4.3.0", "451 4.3.0"]


async def test_pipelined_transaction(services: Services, runtime: Any) -> None:
    def talk() -> list[str]:
        with client(services) as c:
            c.sock.sendall(
                b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bot@agents.test>\r\n"
                b"RCPT TO:<ghost@agents.test>\r\nDATA\r\n"
            )
            replies = [c.reply() for _ in range(4)]
            c.sock.sendall(make_message() + b".\r\n")
            replies.append(c.reply())
            return replies

    replies = await asyncio.to_thread(talk)
    assert [r[:3] for r in replies] == ["250", "250", "550", "354", "250"]


@pytest.mark.parametrize("extra_env", [SMALL])
async def test_connection_limit_answers_421(services: Services, runtime: Any) -> None:
    def talk() -> str:
        held = [client(services) for _ in range(3)]
        try:
            extra = socket.create_connection(("127.0.0.1", services.settings.lmtp.port), timeout=5)
            with extra:
                return extra.recv(200).decode()
        finally:
            for c in held:
                c.__exit__()

    assert (await asyncio.to_thread(talk)).startswith("421 4.3.2")
    # Slots are given back when sessions close.
    result = await asyncio.to_thread(
        lmtp_send, services.settings.lmtp.port, "a@example.org", ["bot@agents.test"], make_message()
    )
    assert result.data["bot@agents.test"].startswith("250")


async def test_bad_addresses_and_sequence_errors(services: Services, runtime: Any) -> None:
    def talk() -> list[str]:
        with client(services) as c:
            out = [c.command("DATA"), c.command("MAIL FROM:<a@example.org>")]
            out.append(c.command("RCPT TO:<no-at-sign>"))
            out.append(c.command("RCPT TO:<" + "x" * 600 + "@agents.test>"))
            out.append(c.command("DATA"))
            return out

    data_first, mail, no_at, long_addr, data_no_rcpt = await asyncio.to_thread(talk)
    assert data_first.startswith("503") and mail.startswith("250")
    assert no_at[0] == "5" and long_addr[0] == "5"
    assert data_no_rcpt.startswith("503")
