"""The vocabulary of e-mail autoconfig: what discovery answers, the DNS records it reads, its
errors, its limits, and the two network seams (:class:`DnsLookup`, :data:`Fetcher`) that tests
replace so they never reach a real DNS server or web host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from mailhook.errors import TemporaryFailure, ValidationFailed

Security = Literal["ssl", "starttls"]
Source = Literal["preset", "autoconfig", "well-known", "srv", "mx-guess"]
#: ``url -> document text``; the default is :func:`mailhook.autoconfig.mozilla.safe_fetcher`.
Fetcher = Callable[[str], Awaitable[str]]

DISCOVERY_TIMEOUT: Final = 8.0
FETCH_TIMEOUT: Final = 4.0
DNS_LIFETIME: Final = 3.0
#: Real configuration documents are a few KiB; Thunderbird's largest are under 20 KiB.
MAX_XML_BYTES: Final = 100 * 1024


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


@dataclass(slots=True)
class Found:
    """What one step learnt; either side may be missing."""

    imap: Server | None = None
    smtp: Server | None = None
    provider: str | None = None
    notes: list[str] = field(default_factory=list)


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
