"""The one SSRF host check: may mailhook connect to this host, and at which address?

Users choose hosts mailhook then connects to: documents and model URLs, webhook URLs, the IMAP
and SMTP servers of an external mailbox. A node usually sits next to things mail must never
reach (the cloud metadata service at 169.254.169.254, the admin API on loopback, databases on
RFC 1918 addresses), and a host name proves nothing about where it leads. So
:func:`vetted_addresses`:

* resolves the host itself (an injectable :data:`Resolver`, under :data:`RESOLVE_TIMEOUT`);
* refuses if *any* address is not public (loopback, private, link-local, CGNAT, multicast,
  reserved, ... and IPv6 forms that embed such an IPv4 address, :func:`blocked_reason`),
  unless the operator's :class:`AllowList` names the host (``host`` or ``host:port``);
* returns the vetted addresses, which the caller connects to instead of looking the name up a
  second time (a DNS answer that changes in between, "rebinding", cannot swap in another one).
  :func:`connect_vetted` opens that connection; TLS still checks the certificate against the
  host name (SNI), which the caller passes to its TLS layer.

Every refusal is a :class:`HostRefused`; :class:`HostUnresolvable` is the kind that may pass
later (no DNS answer now). Callers wrap them in their own error types and wording.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

import httpx

from mailhook.errors import ValidationFailed

__all__ = [
    "RESOLVE_TIMEOUT",
    "AllowList",
    "HostRefused",
    "HostUnresolvable",
    "IPAddress",
    "Resolver",
    "blocked_reason",
    "connect_vetted",
    "parse_allow_list",
    "vetted_addresses",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``(host, port) -> addresses``; injectable so tests never need real DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT: Final = 5.0

# Address blocks no user-chosen host may lead to unless the operator says so. The stdlib's
# ``is_global`` backs this table up; the table exists to give a precise reason.
_BLOCKED: Final[tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address (RFC 1918)"),
        ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (where cloud metadata services live)"),
        ("172.16.0.0/12", "a private address (RFC 1918)"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.168.0.0/16", "a private address (RFC 1918)"),
        ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
# NAT64 (RFC 6052 well-known prefix) carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# DNS labels as written in allow-lists (underscores occur in real names), lower-cased.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class HostRefused(ValidationFailed):
    """mailhook will not connect to this host. ``address`` and ``reason`` say why, when an
    address was the problem (``reason`` is e.g. "a loopback address")."""

    def __init__(
        self, message: str, *, host: str, address: IPAddress | None = None, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
        self.reason = reason


class HostUnresolvable(HostRefused):
    """The host name has no address now (no answer, NXDOMAIN, timeout); it may have one later."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts the operator lets through although they lead to non-public addresses.

    ``hosts`` holds ``(host, port)`` keys, ``port`` None for any port; ``everything`` turns the
    address check off altogether.
    """

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    everything: bool = False

    def allows(self, host: str, port: int) -> bool:
        """``host`` on ``port`` is listed (by name or address, any port or this one)."""
        key = _host_key(host)
        return self.everything or bool({(key, None), (key, port)} & self.hosts)


def parse_allow_list(entries: str | Iterable[str], *, skip_invalid: bool = False) -> AllowList:
    """``host`` or ``host:port`` entries (IPv6 in brackets when a port follows) as an allow-list.

    A string is a comma-separated setting (blank entries are ignored); in an iterable every
    entry must be a host. A malformed entry is a :class:`ValueError` naming it, or is left out
    with ``skip_invalid`` (for callers whose setting was already checked at start-up).
    """
    if isinstance(entries, str):
        entries = [entry.strip() for entry in entries.split(",") if entry.strip()]
    keys: set[tuple[str, int | None]] = set()
    for entry in entries:
        try:
            keys.add(_allow_key(entry))
        except ValueError:
            if not skip_invalid:
                raise
    return AllowList(frozenset(keys))


def _allow_key(entry: str) -> tuple[str, int | None]:
    text = entry.strip()
    if _ip_or_none(text.strip("[]")) is not None:
        return _host_key(text.strip("[]")), None
    try:
        parsed = httpx.URL(f"http://{text}/")
    except httpx.InvalidURL:
        raise ValueError(f"allowed host {entry!r} is not a host name") from None
    # The ASCII (punycode) form: the one callers vet and resolve.
    host = _host_key(parsed.raw_host.decode("ascii"))
    port_ok = parsed.port is None or 1 <= parsed.port <= 65535
    shape_ok = parsed.path == "/" and not (parsed.userinfo or parsed.query or parsed.fragment)
    host_ok = _ip_or_none(host) is not None or _HOST_NAME.fullmatch(host) is not None
    if not (host_ok and port_ok and shape_ok):
        raise ValueError(f"allowed host {entry!r} is not a host name")
    return host, parsed.port


async def vetted_addresses(
    host: str,
    port: int,
    *,
    allow: AllowList,
    resolver: Resolver | None = None,
    timeout: float = RESOLVE_TIMEOUT,  # noqa: ASYNC109 -- the DNS deadline, callers keep their own
) -> list[IPAddress]:
    """Every address of ``host`` (a name or an IP literal, IPv6 with or without brackets),
    if all of them may be connected to; IPv4-mapped IPv6 answers come back as IPv4.

    Raises :class:`HostRefused` (or :class:`HostUnresolvable`) with a message that names the
    host and, for a refused address, the address and what kind it is.
    """
    literal = _ip_or_none(host.strip("[]"))
    addresses = [literal] if literal is not None else await _resolve(host, port, resolver, timeout)
    if not allow.allows(host, port):
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                where = f"{host} is" if literal is not None else f"{host} resolves to {address},"
                raise HostRefused(f"{where} {reason}", host=host, address=address, reason=reason)
    # Connect to an IPv4-mapped answer over IPv4: the socket family then matches the address.
    return [_unmapped(address) for address in addresses]


async def _resolve(host: str, port: int, resolver: Resolver | None, seconds: float) -> list[IPAddress]:
    try:
        async with asyncio.timeout(seconds):
            answers = await (resolver or _system_resolver)(host, port)
    except (OSError, TimeoutError):  # socket.gaierror: NXDOMAIN, no network, ...
        raise HostUnresolvable(f"{host}: cannot resolve the host name", host=host) from None
    addresses = [_ip_or_none(answer) for answer in answers]
    if not addresses:
        raise HostUnresolvable(f"{host}: the host name has no usable address", host=host)
    found = [address for address in addresses if address is not None]
    if len(found) != len(addresses):
        raise HostRefused(f"{host}: the resolver returned no usable address", host=host)
    return found


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def connect_vetted(
    addresses: list[IPAddress],
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 -- per address tried
) -> socket.socket:
    """A connected, non-blocking TCP socket to the first of ``addresses`` that answers.

    The addresses come from :func:`vetted_addresses`: connecting to them, not to the name,
    is what keeps a second DNS answer out. The last error is raised if none answers.
    """
    loop = asyncio.get_running_loop()
    error: OSError = OSError(f"no address to connect to on port {port}")
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (str(address), port))
        except OSError as exc:  # refused, unreachable: the next address may work
            sock.close()
            error = exc
            continue
        except BaseException:  # a timeout or a cancellation ends the attempt
            sock.close()
            raise
        return sock
    raise error


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be connected to without the operator's say-so, or None if it is
    public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = blocked_reason(embedded)
        return None if inner is None else f"{inner} inside an IPv6 address"
    for network, reason in _BLOCKED:
        if address in network:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: IPv4-mapped, 6to4 or NAT64."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        # A zone index (fe80::1%eth0) does not change which kind of address it is.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _host_key(host: str) -> str:
    """One spelling per host: lower case, no trailing dot, IP addresses in canonical form."""
    address = _ip_or_none(host.strip("[]"))
    return str(address) if address is not None else host.lower().rstrip(".")
