"""Mozilla's autoconfig documents (config-v1.1 ``clientConfig``): where to ask, how to fetch
safely, and how to read a document that may be hostile.

Documents are fetched only through :func:`mailhook.net.fetch.fetch_document` (SSRF-safe, size
cap, short deadline) over HTTPS, parsed with defusedxml with any DTD refused (so no entity is ever
expanded or resolved), and only servers offering TLS are kept.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mailhook.autoconfig.model import (
    FETCH_TIMEOUT,
    MAX_XML_BYTES,
    AutoconfigInvalid,
    Fetcher,
    Found,
    Security,
    Server,
    Source,
)
from mailhook.autoconfig.validation import port_number, public_hostname
from mailhook.net.fetch import FetchRefused, Resolver, fetch_document

_PASSWORD_AUTH = frozenset({"password-cleartext", "password-encrypted", "plain", "secure"})
#: config-v1.1 ``socketType`` values; ``plain`` is absent on purpose (it would expose the password).
_SOCKET_TYPES: Final[dict[str, Security]] = {"ssl": "ssl", "tls": "ssl", "starttls": "starttls"}


def autoconfig_urls(address: str, domain: str) -> tuple[str, str]:
    """The two documents Thunderbird asks the domain itself for, HTTPS only.

    Plain HTTP is not tried: the answer says where the password goes, so it must not be
    forgeable on the way.
    """
    return (
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={quote(address, safe='@')}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    )


def parse_autoconfig(text: str, address: str, source: Source) -> Found:
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
    found = Found()
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
        port = port_number(element.findtext("port") or "")
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


async def autoconfig_step(fetch: Fetcher, url: str, address: str, source: Source) -> Found:
    """The settings in the document at ``url``; any failure is raised for the caller to weigh."""
    return parse_autoconfig(await fetch(url), address, source)
