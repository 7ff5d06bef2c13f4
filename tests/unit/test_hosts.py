"""The one SSRF host check (mailhook/net/hosts.py): allow-list spellings, what a host may resolve
to, and connecting to the vetted address. Names are answered by injected resolvers (no DNS);
the only sockets are a listener on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import AsyncIterator

import pytest

from mailhook.errors import ConfigError, ValidationFailed
from mailhook.net.hosts import (
    AllowList,
    HostRefused,
    HostUnresolvable,
    Resolver,
    connect_vetted,
    parse_allow_list,
    vetted_addresses,
)
from mailhook.settings import load_settings

PUBLIC = "93.184.216.34"
NOTHING = AllowList()


def answering(answers: dict[str, list[str]]) -> Resolver:
    async def resolver(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("NXDOMAIN")
        return answers[host]

    return resolver


# --- allow-lists ---------------------------------------------------------------------------------


def test_a_setting_string_is_split_on_commas_and_blank_entries_are_ignored() -> None:
    allow = parse_allow_list(" Mail.LAN. , ,10.0.0.8, [fd00::8]:993 ,imap.lan:143")
    assert allow.allows("mail.lan", 993) and allow.allows("MAIL.lan.", 25)
    assert allow.allows("10.0.0.8", 1) and allow.allows("fd00:0::8", 993)
    assert not allow.allows("fd00::8", 994)
    assert allow.allows("imap.lan", 143) and not allow.allows("imap.lan", 993)
    assert not allow.allows("other.lan", 993)


@pytest.mark.parametrize(
    "entry", ["", "user@mail.lan", "mail.lan/path", "http://x", "mail.lan:99999", "a b", "a..b"]
)
def test_malformed_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a host name") as caught:
        parse_allow_list([entry])
    assert repr(entry) in str(caught.value)


def test_malformed_entries_can_be_skipped() -> None:
    allow = parse_allow_list("mail.lan/x, good.lan", skip_invalid=True)
    assert allow.hosts == frozenset({("good.lan", None)})


@pytest.mark.parametrize(
    "variable",
    ["MAILHOOK_IMAP_ALLOW_HOSTS", "MAILHOOK_WEBHOOKS_ALLOW_HOSTS", "MAILHOOK_AGENT_FETCH_ALLOW_HOSTS"],
)
def test_a_malformed_allow_list_setting_stops_the_start(variable: str) -> None:
    setting = variable.removeprefix("MAILHOOK_").lower().replace("_", ".", 1)
    with pytest.raises(
        ConfigError, match=re.escape(f"{setting}: allowed host 'mail.lan/x' is not a host name")
    ):
        load_settings({variable: "ok.lan, mail.lan/x"})
    assert load_settings({variable: "ok.lan, 10.0.0.1:993"})


# --- vetting -------------------------------------------------------------------------------------


async def test_a_public_host_gives_its_addresses_ipv4_mapped_ones_as_ipv4() -> None:
    resolver = answering({"mail.example.com": [PUBLIC, "::ffff:1.1.1.1", "2606:4700::1111"]})
    addresses = await vetted_addresses("mail.example.com", 993, allow=NOTHING, resolver=resolver)
    assert addresses == [ipaddress.ip_address(a) for a in (PUBLIC, "1.1.1.1", "2606:4700::1111")]


@pytest.mark.parametrize(
    ("host", "message", "address"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address", "127.0.0.1"),
        ("[::1]", "[::1] is a loopback address", "::1"),
        ("inside.example.com", "inside.example.com resolves to 10.1.2.3, a private address", "10.1.2.3"),
        (
            "mixed.example.com",
            "mixed.example.com resolves to 169.254.169.254, a link-local",
            "169.254.169.254",
        ),
        (
            "mapped.example.com",
            "resolves to ::ffff:7f00:1, a loopback address inside an IPv6",
            "::ffff:7f00:1",
        ),
    ],
)
async def test_any_non_public_address_refuses_the_host(host: str, message: str, address: str) -> None:
    resolver = answering(
        {
            "inside.example.com": ["10.1.2.3"],
            "mixed.example.com": [PUBLIC, "169.254.169.254"],
            "mapped.example.com": ["::ffff:127.0.0.1"],
        }
    )
    with pytest.raises(HostRefused, match=re.escape(message)) as caught:
        await vetted_addresses(host, 993, allow=NOTHING, resolver=resolver)
    assert caught.value.address == ipaddress.ip_address(address)
    assert caught.value.reason and caught.value.host == host
    assert isinstance(caught.value, ValidationFailed), "a 400 where the API meets it"


async def test_the_allow_list_lets_a_host_through_on_its_port_only() -> None:
    resolver = answering({"mail.lan": ["192.168.1.5"]})
    allow = parse_allow_list("mail.lan:993")
    assert await vetted_addresses("mail.lan", 993, allow=allow, resolver=resolver) == [
        ipaddress.ip_address("192.168.1.5")
    ]
    with pytest.raises(HostRefused, match=r"192\.168\.1\.5"):
        await vetted_addresses("mail.lan", 587, allow=allow, resolver=resolver)
    everything = AllowList(everything=True)
    assert await vetted_addresses("127.0.0.1", 1, allow=everything) == [ipaddress.ip_address("127.0.0.1")]


async def test_no_usable_answer_is_a_refusal_that_names_no_address() -> None:
    with pytest.raises(HostUnresolvable, match="cannot resolve the host name"):
        await vetted_addresses("gone.example.com", 993, allow=NOTHING, resolver=answering({}))
    with pytest.raises(HostUnresolvable, match="no usable address"):
        await vetted_addresses(
            "empty.example.com", 993, allow=NOTHING, resolver=answering({"empty.example.com": []})
        )
    with pytest.raises(HostRefused, match="no usable address") as caught:
        await vetted_addresses(
            "odd.example.com", 993, allow=NOTHING, resolver=answering({"odd.example.com": ["x"]})
        )
    assert caught.value.address is None and not isinstance(caught.value, HostUnresolvable)


async def test_a_resolver_that_never_answers_is_given_up() -> None:
    async def hanging(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    with pytest.raises(HostUnresolvable, match="cannot resolve"):
        await vetted_addresses("slow.example.com", 993, allow=NOTHING, resolver=hanging, timeout=0.05)


# --- connecting to the vetted address ------------------------------------------------------------


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 only; its port."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_the_first_address_that_answers_is_used(listener: int) -> None:
    port = listener
    # 127.0.0.2 is loopback too, but nothing listens there: refused, so the next one is tried.
    addresses = [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]
    sock = await connect_vetted(addresses, port, timeout=5)
    try:
        assert sock.getpeername() == ("127.0.0.1", port)
    finally:
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        await connect_vetted(addresses[:1], port, timeout=5)
    with pytest.raises(OSError, match="no address"):
        await connect_vetted([], port, timeout=5)
