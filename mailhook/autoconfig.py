"""Finds the IMAP and SMTP settings of an e-mail address, so connecting a mailbox needs only a password.

:func:`discover` answers, for each of IMAP and SMTP submission, with the first of these that knows:

1. **preset**: a built-in table of large providers, by the address's domain (no network at all);
2. **autoconfig**: Mozilla's ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=...``;
3. **well-known**: ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``;
4. **srv**: RFC 6186 SRV records ``_imaps._tcp``/``_imap._tcp`` and, for submission, RFC 8314's
   ``_submissions._tcp`` and RFC 6186's ``_submission._tcp``;
5. **mx-guess**: the domain's MX hosts: mail handled by a known provider (Google, Microsoft,
   Fastmail, ...) gets that provider's settings; otherwise ``imap.<domain>``/``smtp.<domain>``, a
   low-confidence guess said so in the notes.

Steps 2-5 run concurrently under one deadline (:data:`DISCOVERY_TIMEOUT`); the answer still follows
the order above, and discovery stops as soon as both answers are settled. What remote servers
say is untrusted: documents are fetched only through :func:`mailhook.net.fetch.fetch_document`
(SSRF-safe, size cap, short deadline) over HTTPS, parsed with defusedxml with any DTD refused (so
no entity is ever expanded or resolved), and every host name from XML or DNS must be a plain DNS
name (no IP literal, no ``localhost``) with a port in 1-65535. Only TLS is offered: implicit TLS
(``ssl``, RFC 8314) or STARTTLS, never a plain-text connection that would carry the password.

The DNS resolver (:class:`DnsLookup`) and the document fetcher (:data:`Fetcher`) are parameters,
so tests never reach a real DNS server or web host.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from dns.rdata import Rdata
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.IN.SRV import SRV

from mailhook.errors import MailhookError, TemporaryFailure, ValidationFailed
from mailhook.logs import get_logger
from mailhook.net.fetch import FetchRefused, Resolver, fetch_document
from mailhook.store.accounts import clean_email

__all__ = [
    "DISCOVERY_TIMEOUT",
    "PRESETS",
    "AutoconfigInvalid",
    "AutoconfigResult",
    "DnsLookup",
    "DnsPythonLookup",
    "Fetcher",
    "LookupFailed",
    "MxRecord",
    "Server",
    "SrvRecord",
    "discover",
    "order_srv",
    "parse_autoconfig",
    "safe_fetcher",
]

log = get_logger(__name__)

Security = Literal["ssl", "starttls"]
Source = Literal["preset", "autoconfig", "well-known", "srv", "mx-guess"]
#: ``url -> document text``; the default is :func:`safe_fetcher`.
Fetcher = Callable[[str], Awaitable[str]]

DISCOVERY_TIMEOUT: Final = 8.0
FETCH_TIMEOUT: Final = 4.0
DNS_LIFETIME: Final = 3.0
#: Real configuration documents are a few KiB; Thunderbird's largest are under 20 KiB.
MAX_XML_BYTES: Final = 100 * 1024
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PASSWORD_AUTH = frozenset({"password-cleartext", "password-encrypted", "plain", "secure"})
#: config-v1.1 ``socketType`` values; ``plain`` is absent on purpose (it would expose the password).
_SOCKET_TYPES: Final[dict[str, Security]] = {"ssl": "ssl", "tls": "ssl", "starttls": "starttls"}


class AutoconfigInvalid(ValidationFailed):
    """A configuration document that is malformed, hostile or offers nothing usable."""


class LookupFailed(TemporaryFailure):
    """A DNS lookup failed for a reason other than "no such record" (timeout, SERVFAIL, ...)."""


@dataclass(frozen=True, slots=True)
class Server:
    """Where to connect for one protocol, and which step of the discovery said so."""

    host: str
    port: int
    security: Security
    source: Source
    #: The login to try: the address itself unless an autoconfig document says otherwise.
    username: str


@dataclass(frozen=True, slots=True)
class AutoconfigResult:
    """Settings for IMAP (reading) and SMTP submission (sending), with notes for the user."""

    email: str
    #: The provider when a preset or the MX hosts identify it, else None.
    provider: str | None
    imap: Server
    smtp: Server
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer (RFC 2782); ``target`` ``"."`` means "service not offered here"."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class MxRecord:
    """One MX answer (RFC 5321 section 5.1); ``exchange`` ``"."`` is a null MX (RFC 7505)."""

    preference: int
    exchange: str


class DnsLookup(Protocol):
    """The two DNS questions discovery asks; "no such name/record" is an empty list."""

    async def srv(self, name: str) -> list[SrvRecord]:
        """SRV records at ``name``."""
        ...

    async def mx(self, domain: str) -> list[MxRecord]:
        """MX records of ``domain``."""
        ...


# --- presets ------------------------------------------------------------------------------------

Endpoint = tuple[str, int, Security]


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider's published IMAP and SMTP submission settings."""

    name: str
    imap: Endpoint
    smtp: Endpoint
    notes: tuple[str, ...] = ()


_GOOGLE_NOTE = (
    "Google accepts only an app password here: turn on 2-Step Verification, then create one at "
    "myaccount.google.com/apppasswords. The account password is refused."
)
_NEEDS_APP_LOGIN = "{} needs an app password ({}); the account password is refused."
_GMAIL = Preset("Gmail", ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl"), (_GOOGLE_NOTE,))
_WORKSPACE = replace(_GMAIL, name="Google Workspace")
_OUTLOOK = Preset(
    "Outlook.com",
    ("outlook.office365.com", 993, "ssl"),
    ("smtp-mail.outlook.com", 587, "starttls"),
    (
        "Microsoft has retired password (basic) sign-in for IMAP and SMTP on many accounts: if an "
        "app password is refused, the account needs OAuth2 sign-in.",
    ),
)
_OFFICE365 = Preset(
    "Microsoft 365",
    ("outlook.office365.com", 993, "ssl"),
    ("smtp.office365.com", 587, "starttls"),
    (
        "Microsoft 365 tenants often have IMAP and authenticated SMTP turned off, and may accept "
        "only OAuth2 sign-in: ask the tenant administrator to allow them for this mailbox.",
    ),
)
_YAHOO = Preset(
    "Yahoo Mail",
    ("imap.mail.yahoo.com", 993, "ssl"),
    ("smtp.mail.yahoo.com", 465, "ssl"),
    (_NEEDS_APP_LOGIN.format("Yahoo", "Account security, Generate app password"),),
)
_ICLOUD = Preset(
    "iCloud Mail",
    ("imap.mail.me.com", 993, "ssl"),
    ("smtp.mail.me.com", 587, "starttls"),
    (_NEEDS_APP_LOGIN.format("iCloud", "an app-specific password from account.apple.com"),),
)
_FASTMAIL = Preset(
    "Fastmail",
    ("imap.fastmail.com", 993, "ssl"),
    ("smtp.fastmail.com", 465, "ssl"),
    (_NEEDS_APP_LOGIN.format("Fastmail", "Settings, Privacy & Security, with IMAP and SMTP access"),),
)
_ENABLE_IMAP = "Turn on IMAP access in the {} mailbox settings first: it is off by default."
_GMX = Preset(
    "GMX", ("imap.gmx.net", 993, "ssl"), ("mail.gmx.net", 587, "starttls"), (_ENABLE_IMAP.format("GMX"),)
)
_GMX_COM = replace(_GMX, imap=("imap.gmx.com", 993, "ssl"), smtp=("mail.gmx.com", 587, "starttls"))
_WEBDE = Preset(
    "WEB.DE", ("imap.web.de", 993, "ssl"), ("smtp.web.de", 587, "starttls"), (_ENABLE_IMAP.format("WEB.DE"),)
)
_POSTEO = Preset("Posteo", ("posteo.de", 993, "ssl"), ("posteo.de", 465, "ssl"))
_MAILBOX_ORG = Preset("mailbox.org", ("imap.mailbox.org", 993, "ssl"), ("smtp.mailbox.org", 465, "ssl"))
_PROTON = Preset(
    "Proton Mail",
    # Proton Mail Bridge's defaults: it listens on loopback and speaks STARTTLS on both ports.
    ("127.0.0.1", 1143, "starttls"),
    ("127.0.0.1", 1025, "starttls"),
    (
        "Proton Mail has no IMAP or SMTP of its own: it needs Proton Mail Bridge (paid plans) "
        "running where mailhook can reach it, with the password Bridge shows. Change the host if "
        "Bridge does not run on the mailhook machine.",
    ),
)
_ZOHO_NOTE = (
    "Turn on IMAP access in Zoho Mail's settings; with two-factor authentication use an "
    "application-specific password."
)
_ZOHO = Preset("Zoho Mail", ("imap.zoho.com", 993, "ssl"), ("smtp.zoho.com", 465, "ssl"), (_ZOHO_NOTE,))
_ZOHO_EU = replace(_ZOHO, imap=("imap.zoho.eu", 993, "ssl"), smtp=("smtp.zoho.eu", 465, "ssl"))

#: Presets by the address's domain.
PRESETS: Final[dict[str, Preset]] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), _GMAIL),
    **dict.fromkeys(("outlook.com", "hotmail.com", "live.com", "msn.com"), _OUTLOOK),
    **dict.fromkeys(("yahoo.com", "ymail.com", "rocketmail.com"), _YAHOO),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), _ICLOUD),
    **dict.fromkeys(("fastmail.com", "fastmail.fm"), _FASTMAIL),
    **dict.fromkeys(("gmx.net", "gmx.de", "gmx.at", "gmx.ch"), _GMX),
    "gmx.com": _GMX_COM,
    "web.de": _WEBDE,
    **dict.fromkeys(("posteo.de", "posteo.net", "posteo.at", "posteo.ch", "posteo.eu"), _POSTEO),
    "mailbox.org": _MAILBOX_ORG,
    **dict.fromkeys(("proton.me", "protonmail.com", "protonmail.ch", "pm.me"), _PROTON),
    **dict.fromkeys(("zoho.com", "zohomail.com"), _ZOHO),
    **dict.fromkeys(("zoho.eu", "zohomail.eu"), _ZOHO_EU),
}

#: Providers recognised by the domain their MX hosts are under (custom domains they host).
MX_PRESETS: Final[tuple[tuple[str, Preset], ...]] = (
    ("google.com", _WORKSPACE),
    ("googlemail.com", _WORKSPACE),
    ("protection.outlook.com", _OFFICE365),
    ("messagingengine.com", _FASTMAIL),
    ("yahoodns.net", _YAHOO),
    ("mail.icloud.com", _ICLOUD),
    ("gmx.net", _GMX),
    ("web.de", _WEBDE),
    ("posteo.de", _POSTEO),
    ("mailbox.org", _MAILBOX_ORG),
    ("protonmail.ch", _PROTON),
    ("zoho.com", _ZOHO),
    ("zoho.eu", _ZOHO_EU),
)


# --- validation ---------------------------------------------------------------------------------


def public_hostname(text: str) -> str | None:
    """``text`` as a lower-case DNS host name (RFC 1123 letters, digits, hyphens), or None.

    IP literals, single labels (``localhost``, ``intranet``) and ``*.localhost`` are refused:
    a remote document must not point a mailbox's password at an address of its choosing.
    """
    host = text.strip().lower().removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or labels[-1].isdigit() or labels[-1] == "localhost":
        return None
    return host if all(_LABEL.fullmatch(label) for label in labels) else None


def _port(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def _domain_of(address: str) -> str:
    domain = public_hostname(address.rpartition("@")[2])
    if domain is None:
        raise ValidationFailed("the e-mail address's domain is not a public DNS name")
    return domain


# --- the result of one step ---------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    """What one step learnt; either side may be missing."""

    imap: Server | None = None
    smtp: Server | None = None
    provider: str | None = None
    notes: list[str] = field(default_factory=list)


def _from_preset(preset: Preset, source: Source, address: str) -> _Found:
    imap = Server(*preset.imap, source=source, username=address)
    smtp = Server(*preset.smtp, source=source, username=address)
    return _Found(imap, smtp, preset.name, list(preset.notes))


def _guess(domain: str, address: str, why: str) -> _Found:
    """``imap.<domain>`` and ``smtp.<domain>`` with implicit TLS (RFC 8314 section 3)."""
    imap = Server(f"imap.{domain}", 993, "ssl", "mx-guess", address)
    smtp = Server(f"smtp.{domain}", 465, "ssl", "mx-guess", address)
    note = f"{why}; imap.{domain} and smtp.{domain} are only a guess: check them with your provider."
    return _Found(imap, smtp, None, [note])


# --- autoconfig XML -----------------------------------------------------------------------------


def autoconfig_urls(address: str, domain: str) -> tuple[str, str]:
    """The two documents Thunderbird asks the domain itself for, HTTPS only.

    Plain HTTP is not tried: the answer says where the password goes, so it must not be
    forgeable on the way.
    """
    return (
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={quote(address, safe='@')}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    )


def parse_autoconfig(text: str, address: str, source: Source) -> _Found:
    """IMAP and SMTP settings from a ``clientConfig`` document (Mozilla config-v1.1).

    A DTD is refused outright (so no entity, internal or external, is ever expanded), as is a
    document over :data:`MAX_XML_BYTES`. The first IMAP and SMTP servers using TLS are taken,
    preferring ones that accept a password; plain-text servers are skipped.
    """
    if len(text.encode("utf-8", "replace")) > MAX_XML_BYTES:
        raise AutoconfigInvalid("the configuration document is too large")
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise AutoconfigInvalid("the configuration document has a DTD or entities: refused") from None
    except ParseError:
        raise AutoconfigInvalid("the configuration document is not well-formed XML") from None
    provider = root.find("emailProvider") if root.tag == "clientConfig" else None
    if provider is None:
        raise AutoconfigInvalid("the document is not a clientConfig with an emailProvider")
    found = _Found()
    found.imap = _pick(provider.findall("incomingServer"), "imap", address, source, found.notes)
    found.smtp = _pick(provider.findall("outgoingServer"), "smtp", address, source, found.notes)
    if found.imap is None and found.smtp is None:
        raise AutoconfigInvalid("the configuration document offers no usable IMAP or SMTP server")
    return found


def _pick(
    elements: list[Element], kind: str, address: str, source: Source, notes: list[str]
) -> Server | None:
    usable: list[tuple[Server, bool]] = []
    skipped_plain = False
    for element in elements:
        if element.get("type", "").lower() != kind:
            continue
        security = _SOCKET_TYPES.get((element.findtext("socketType") or "").strip().lower())
        host = public_hostname(_expand(element.findtext("hostname") or "", address))
        port = _port(element.findtext("port") or "")
        if security is None:
            skipped_plain = True
            continue
        if host is None or port is None:
            continue
        methods = {(a.text or "").strip().lower() for a in element.findall("authentication")}
        takes_password = not methods or bool(methods & _PASSWORD_AUTH)
        usable.append((Server(host, port, security, source, _username(element, address)), takes_password))
    if not usable:
        if skipped_plain:
            notes.append(f"The {kind.upper()} server the document names has no TLS: not offered.")
        return None
    for server, takes_password in usable:
        if takes_password:
            return server
    notes.append(f"The {kind.upper()} server accepts only OAuth2 or similar sign-in, not a password.")
    return usable[0][0]


def _expand(template: str, address: str) -> str:
    """Thunderbird's placeholders, as in ``<username>%EMAILLOCALPART%</username>``."""
    local, _, domain = address.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", address)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def _username(element: Element, address: str) -> str:
    name = _expand((element.findtext("username") or "").strip(), address)
    if not name or len(name) > 320 or not name.isprintable() or any(c.isspace() for c in name):
        return address
    return name


def safe_fetcher(
    *,
    client: httpx.AsyncClient | None = None,
    resolver: Resolver | None = None,
    timeout: float = FETCH_TIMEOUT,
) -> Fetcher:
    """A :data:`Fetcher` over :func:`fetch_document`: public hosts only, capped, time-boxed."""

    async def fetch(url: str) -> str:
        document = await fetch_document(
            url, client=client, max_bytes=MAX_XML_BYTES, timeout=timeout, resolver=resolver
        )
        if document.content_type == "application/pdf":
            raise FetchRefused(f"{url}: a PDF is not a configuration document")
        return document.text

    return fetch


async def _autoconfig_step(fetch: Fetcher, url: str, address: str, source: Source) -> _Found:
    return parse_autoconfig(await fetch(url), address, source)


# --- SRV (RFC 6186, RFC 8314) -------------------------------------------------------------------

#: (service label, security), implicit TLS first (RFC 8314 section 3).
IMAP_SERVICES: Final[tuple[tuple[str, Security], ...]] = (("_imaps._tcp", "ssl"), ("_imap._tcp", "starttls"))
SUBMISSION_SERVICES: Final[tuple[tuple[str, Security], ...]] = (
    ("_submissions._tcp", "ssl"),
    ("_submission._tcp", "starttls"),
)


def order_srv(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782's order: lowest priority first; within one priority, a weighted random order.

    Per the RFC, weight-0 records go first in the running sum, so they are picked only when the
    random number is 0, i.e. rarely while heavier records remain.
    """
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)
        while group:
            pick = rng.randint(0, sum(record.weight for record in group))
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    ordered.append(group.pop(index))
                    break
    return ordered


async def _srv_step(
    dns_lookup: DnsLookup,
    domain: str,
    services: tuple[tuple[str, Security], ...],
    kind: Literal["imap", "smtp"],
    address: str,
    rng: random.Random,
) -> _Found:
    """The best server of the services, honouring priority across them (RFC 6186 section 3.4)."""
    answers = await asyncio.gather(*(dns_lookup.srv(f"{label}.{domain}") for label, _ in services))
    candidates: list[tuple[int, int, SrvRecord, Security]] = []
    declined = []
    for rank, ((label, security), records) in enumerate(zip(services, answers, strict=True)):
        # A target of "." says the service is decidedly not available here (RFC 2782).
        offered = [r for r in records if r.target.strip() not in (".", "")]
        if records and not offered:
            declined.append(label)
        candidates += [(r.priority, rank, r, security) for r in order_srv(offered, rng)]
    found = _Found()
    if declined:
        found.notes.append(f"{domain} says in DNS that it does not offer {', '.join(declined)}.")
    # Lowest priority wins across both services; on a tie, implicit TLS (the lower rank).
    for _, _, record, security in sorted(candidates, key=lambda c: (c[0], c[1])):
        host = public_hostname(record.target)
        if host is None or not 1 <= record.port <= 65535:
            continue
        setattr(found, kind, Server(host, record.port, security, "srv", address))
        if host != domain and not host.endswith(f".{domain}"):
            # Unsigned DNS answers can be forged (RFC 6186 section 6): let the user confirm.
            found.notes.append(
                f"DNS points {kind.upper()} for {domain} to {host}, outside the domain: confirm it "
                "with your provider before saving."
            )
        break
    return found


# --- MX -----------------------------------------------------------------------------------------


def _mx_preset(host: str) -> Preset | None:
    for suffix, preset in MX_PRESETS:
        if host == suffix or host.endswith(f".{suffix}"):
            return preset
    return None


async def _mx_step(dns_lookup: DnsLookup, domain: str, address: str) -> _Found:
    records = sorted(await dns_lookup.mx(domain), key=lambda r: r.preference)
    if any(r.exchange.strip() in (".", "") for r in records):
        return _guess(domain, address, f"{domain} publishes a null MX (RFC 7505): it receives no mail")
    hosts = [h for h in (public_hostname(r.exchange) for r in records) if h is not None]
    for host in hosts:
        preset = _mx_preset(host)
        if preset is not None:
            found = _from_preset(preset, "mx-guess", address)
            found.notes.insert(0, f"{domain}'s mail is handled by {preset.name} (MX {host}).")
            return found
    why = f"{domain} has no MX records" if not hosts else "no published settings were found"
    return _guess(domain, address, why)


# --- dnspython ----------------------------------------------------------------------------------


class DnsPythonLookup:
    """:class:`DnsLookup` over dnspython's asyncio resolver (the system's resolv.conf by default)."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver | None = None, *, lifetime: float = DNS_LIFETIME
    ) -> None:
        self._resolver = resolver
        self._lifetime = lifetime

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                self._resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise LookupFailed("no DNS resolver is configured on this machine") from None
        return self._resolver

    async def _records(self, name: str, rdtype: str) -> list[Rdata]:
        try:
            answer = await self._get().resolve(name, rdtype, lifetime=self._lifetime, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise LookupFailed(f"DNS {rdtype} lookup of {name} timed out") from None
        except dns.exception.DNSException:
            raise LookupFailed(f"DNS {rdtype} lookup of {name} failed") from None
        return list(answer)

    async def srv(self, name: str) -> list[SrvRecord]:
        """SRV records at ``name``; the root target is given as ``"."``."""
        rows = await self._records(name, "SRV")
        return [
            SrvRecord(r.priority, r.weight, r.port, _name_text(r.target)) for r in rows if isinstance(r, SRV)
        ]

    async def mx(self, domain: str) -> list[MxRecord]:
        """MX records of ``domain``; a null MX's exchange is ``"."``."""
        rows = await self._records(domain, "MX")
        return [MxRecord(r.preference, _name_text(r.exchange)) for r in rows if isinstance(r, MX)]


def _name_text(name: dns.name.Name) -> str:
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)


# --- discovery ----------------------------------------------------------------------------------

_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "imap": ("autoconfig", "well-known", "srv-imap", "mx"),
    "smtp": ("autoconfig", "well-known", "srv-smtp", "mx"),
}


async def discover(
    email: str,
    *,
    resolver: DnsLookup | None = None,
    fetch: Fetcher | None = None,
    timeout: float = DISCOVERY_TIMEOUT,  # noqa: ASYNC109 -- one deadline over every step
    rng: random.Random | None = None,
) -> AutoconfigResult:
    """IMAP and SMTP settings for ``email`` (see the module docstring for the order).

    :class:`ValidationFailed` for a malformed address or a domain that is not a public DNS
    name. Failing steps only add to the log; the answer always has both servers, at worst the
    ``imap.<domain>`` guess.
    """
    address = clean_email(email)
    domain = _domain_of(address)
    preset = PRESETS.get(domain)
    if preset is not None:
        found = _from_preset(preset, "preset", address)
        return _result(address, _first({}, "imap", found), _first({}, "smtp", found))
    fetch = fetch or safe_fetcher()
    dns_lookup = resolver or DnsPythonLookup()
    rng = rng or random.Random()  # noqa: S311 -- load spreading (RFC 2782), not security
    autoconfig_url, well_known_url = autoconfig_urls(address, domain)
    steps = {
        "autoconfig": _autoconfig_step(fetch, autoconfig_url, address, "autoconfig"),
        "well-known": _autoconfig_step(fetch, well_known_url, address, "well-known"),
        "srv-imap": _srv_step(dns_lookup, domain, IMAP_SERVICES, "imap", address, rng),
        "srv-smtp": _srv_step(dns_lookup, domain, SUBMISSION_SERVICES, "smtp", address, rng),
        "mx": _mx_step(dns_lookup, domain, address),
    }
    tasks = {name: asyncio.create_task(_guarded(name, domain, step)) for name, step in steps.items()}
    timed_out = not await _settle(tasks, timeout)
    results = {name: task.result() for name, task in tasks.items() if task.done() and not task.cancelled()}
    fallback = _guess(domain, address, "no published settings were found")
    if timed_out:
        fallback.notes.insert(0, f"Discovery stopped after {timeout:g} s; the slowest sources were skipped.")
    result = _result(address, _first(results, "imap", fallback), _first(results, "smtp", fallback))
    log.info(
        "autoconfig_discovered",
        domain=domain,
        imap=result.imap.source,
        smtp=result.smtp.source,
        timed_out=timed_out,
    )
    return result


async def _guarded(name: str, domain: str, step: Awaitable[_Found]) -> _Found:
    """One step; any failure of it is just "nothing found here": discovery is best effort.

    Deliberate failures (refused, unavailable, invalid) are expected and logged as such;
    anything else (a resolver or codec error on a strange name) is logged as a warning, by type
    only, and does not cost the user the other steps' answers.
    """
    try:
        return await step
    except MailhookError as exc:
        log.info("autoconfig_step_failed", step=name, domain=domain, error=type(exc).__name__)
    except Exception as exc:
        log.warning("autoconfig_step_crashed", step=name, domain=domain, error=type(exc).__name__)
    return _Found()


async def _settle(tasks: dict[str, asyncio.Task[_Found]], timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until both answers are settled or the deadline passes; cancel what is left.

    An answer is settled once some step has it and every step before that step has finished.
    True if the wait ended before the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending: set[asyncio.Task[_Found]] = set(tasks.values())
    settled = False
    try:
        while pending and not settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            settled = all(_is_settled(tasks, kind) for kind in _ORDER)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return settled or not pending


def _is_settled(tasks: dict[str, asyncio.Task[_Found]], kind: str) -> bool:
    for name in _ORDER[kind]:
        task = tasks[name]
        if not task.done():
            return False
        if getattr(task.result(), kind) is not None:
            return True
    return True


def _first(results: dict[str, _Found], kind: str, fallback: _Found) -> tuple[Server, _Found]:
    """The server of the first step in :data:`_ORDER` that has one, and that step."""
    for step in [*(results[name] for name in _ORDER[kind] if name in results), fallback]:
        server: Server | None = getattr(step, kind)
        if server is not None:
            return server, step
    raise AssertionError("the fallback always has both servers")


def _result(address: str, imap: tuple[Server, _Found], smtp: tuple[Server, _Found]) -> AutoconfigResult:
    (imap_server, imap_step), (smtp_server, smtp_step) = imap, smtp
    notes = list(imap_step.notes)
    notes += [note for note in smtp_step.notes if note not in notes]
    provider = imap_step.provider if imap_step.provider == smtp_step.provider else None
    return AutoconfigResult(address, provider, imap_server, smtp_server, tuple(notes))
