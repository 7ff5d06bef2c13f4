"""Fetches the documents a mailbox owner configured, without becoming a way into the private network.

A mailhook node usually sits next to things that must never be reachable from mail: the cloud
metadata service (169.254.169.254), the admin API on loopback, databases on RFC 1918 addresses. A
URL alone proves nothing about where it leads, so :func:`fetch_document`:

* accepts only ``http``/``https`` URLs without user-info;
* resolves the host itself and refuses if *any* address is not public (loopback, private,
  link-local, CGNAT, multicast, reserved, ... and IPv6 forms that embed such an IPv4 address),
  unless the owner listed the host in ``allow_hosts`` or set ``allow_private``;
* connects to the address it vetted, not to a second lookup (DNS rebinding), while still sending
  the real ``Host`` header and TLS SNI name so virtual hosting and certificate checks work;
* follows at most :data:`MAX_REDIRECTS` redirects by hand, vetting every hop the same way;
* streams the body and stops at ``max_bytes``; one deadline covers the whole exchange, so a server
  that drips a byte at a time cannot hold a worker;
* accepts only text-like content, and PDF, whose text comes from :mod:`mailhook.agent.pdf`.

Refusals are :class:`FetchRefused` (retrying will not help); timeouts, connection failures and
5xx answers are :class:`FetchUnavailable` (a :class:`TemporaryFailure`: try again later).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import httpx

from mailhook import __version__
from mailhook.agent.pdf import extract_pdf_text_async
from mailhook.errors import TemporaryFailure, ValidationFailed

__all__ = [
    "MAX_REDIRECTS",
    "USER_AGENT",
    "FetchRefused",
    "FetchUnavailable",
    "FetchedDocument",
    "Resolver",
    "blocked_reason",
    "fetch_document",
]

MAX_REDIRECTS: Final = 5
USER_AGENT: Final = f"mailhook/{__version__}"

#: ``(host, port) -> addresses``; injectable so tests never need real DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TEXT_TYPES = frozenset({"application/json", "application/xml"})
_PDF = "application/pdf"
_ACCEPT = "text/*, application/json, application/xml, application/pdf;q=0.9"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Address blocks no owner-configured document should live in unless the owner says so. The
# stdlib's ``is_global`` backs this table up; the table exists to give a precise reason.
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


class FetchRefused(ValidationFailed):
    """The URL, where it leads or what it returned is not allowed; retrying will not help."""


class FetchUnavailable(TemporaryFailure):
    """The document could not be fetched now (timeout, connection error, server error)."""


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A fetched document as text. ``final_url`` is where the redirects ended."""

    url: str
    final_url: str
    content_type: str
    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Policy:
    """Who may be fetched: the allow-list, the private-network switch and the resolver."""

    allow_hosts: frozenset[tuple[str, int | None]]
    allow_private: bool
    resolver: Resolver

    def allows(self, host: str, port: int) -> bool:
        key = _host_key(host)
        return self.allow_private or bool({(key, None), (key, port)} & self.allow_hosts)


@dataclass(frozen=True, slots=True)
class _Limits:
    max_bytes: int
    timeout: float


async def fetch_document(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_bytes: int = 2_000_000,
    timeout: float = 10.0,  # noqa: ASYNC109 -- one deadline over DNS, every hop and the body
    allow_hosts: Iterable[str] = (),
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> FetchedDocument:
    """Fetch ``url`` as text under the rules in the module docstring.

    ``allow_hosts`` entries are host names or IP addresses, optionally with ``:port``. A
    ``client`` passed in must not use a proxy (the pinned address would be meaningless) and is
    shared by every hop; without one a fresh client that ignores proxy environment variables is
    used and closed.
    """
    policy = _Policy(_allow_list(allow_hosts), allow_private, resolver or _system_resolver)
    limits = _Limits(max_bytes, timeout)
    try:
        async with asyncio.timeout(timeout):
            if client is not None:
                return await _follow(url, client, policy, limits)
            async with _new_client(timeout) as own:
                return await _follow(url, own, policy, limits)
    except TimeoutError as exc:
        raise FetchUnavailable(f"{url}: no complete answer within {timeout:g} s") from exc


def _new_client(timeout: float) -> httpx.AsyncClient:
    # trust_env=False: an HTTP_PROXY variable would send the request to a proxy that resolves
    # the name again, undoing the pinning.
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False)


async def _follow(url: str, client: httpx.AsyncClient, policy: _Policy, limits: _Limits) -> FetchedDocument:
    current = _checked_url(url)
    for _ in range(MAX_REDIRECTS + 1):
        address = await _vetted_address(current, policy)
        response = await _send(client, current, address)
        try:
            location = _redirect_target(response)
            if location is None:
                return await _document(url, current, response, limits)
        finally:
            await response.aclose()
        current = _checked_url(location, base=current)
    raise FetchRefused(f"{url}: more than {MAX_REDIRECTS} redirects")


def _checked_url(raw: str, base: httpx.URL | None = None) -> httpx.URL:
    """``raw`` (relative to ``base`` for redirects) if it is an http(s) URL we may request.

    Messages never repeat ``raw`` whole: it may carry a password.
    """
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchRefused("not a valid URL") from exc
    if url.scheme not in ("http", "https"):
        raise FetchRefused(f"{url.scheme or 'scheme-less'} URL: only http and https URLs can be fetched")
    if url.userinfo:
        raise FetchRefused(f"{url.host}: URLs with a user name or password are not allowed")
    if not url.host:
        raise FetchRefused("the URL has no host")
    return url


async def _vetted_address(url: httpx.URL, policy: _Policy) -> IPAddress:
    """The address to connect to: every address the host has must pass, unless allowed."""
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await _resolve(url, port, policy.resolver)
    if not policy.allows(url.host, port):
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                where = f"{url.host} is" if _ip_or_none(url.host) else f"{url.host} resolves to {address},"
                raise FetchRefused(f"{where} {reason}; add the host to the allowed hosts to fetch it")
    first = addresses[0]
    # Connect to an IPv4-mapped answer over IPv4: the socket family then matches the address.
    return (first.ipv4_mapped or first) if isinstance(first, ipaddress.IPv6Address) else first


async def _resolve(url: httpx.URL, port: int, resolver: Resolver) -> list[IPAddress]:
    literal = _ip_or_none(url.host)
    if literal is not None:
        return [literal]
    try:
        answers = await resolver(url.raw_host.decode("ascii"), port)
    except OSError as exc:  # socket.gaierror: NXDOMAIN, no network, ...
        raise FetchUnavailable(f"{url.host}: cannot resolve the host name") from exc
    addresses = [_ip_or_none(answer) for answer in answers]
    if not addresses:
        raise FetchUnavailable(f"{url.host}: the host name has no addresses")
    if None in addresses:
        raise FetchRefused(f"{url.host}: the resolver returned something that is not an address")
    return [address for address in addresses if address is not None]


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        # A zone index (fe80::1%eth0) does not change which kind of address it is.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched without the owner's say-so, or None if it is public."""
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


async def _send(client: httpx.AsyncClient, url: httpx.URL, address: IPAddress) -> httpx.Response:
    """GET ``url`` over a connection to ``address``, with the URL's own Host header and SNI name."""
    host = url.raw_host.decode("ascii")
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    request = client.build_request(
        "GET",
        url.copy_with(host=str(address)),
        headers={
            "Host": url.netloc.decode("ascii"),
            "User-Agent": USER_AGENT,
            "Accept": _ACCEPT,
            # Compressed bodies are inflated a chunk at a time without a bound; ask for none.
            "Accept-Encoding": "identity",
        },
        extensions=extensions,
    )
    try:
        return await client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise FetchUnavailable(f"{url}: timed out") from exc
    except httpx.HTTPError as exc:
        raise FetchUnavailable(f"{url}: cannot connect ({type(exc).__name__})") from exc


def _redirect_target(response: httpx.Response) -> str | None:
    if response.status_code in _REDIRECTS and "location" in response.headers:
        return response.headers["location"]
    return None


async def _document(
    requested: str, url: httpx.URL, response: httpx.Response, limits: _Limits
) -> FetchedDocument:
    _check_status(url, response.status_code)
    media_type, charset = _content_type(response.headers.get("content-type", ""))
    if not (media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type == _PDF):
        raise FetchRefused(f"{url}: content type {media_type or 'none'!r} is not a text document")
    body = await _read_capped(url, response, limits.max_bytes)
    if media_type == _PDF:
        text = await _pdf_text(url, body, limits)
    else:
        text = _decode(body, charset)
    return FetchedDocument(url=requested, final_url=str(url), content_type=media_type, text=text)


def _check_status(url: httpx.URL, status: int) -> None:
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise FetchUnavailable(f"{url}: the server answered HTTP {status}")
    raise FetchRefused(f"{url}: the server answered HTTP {status}")


def _content_type(header: str) -> tuple[str, str]:
    """Media type and a usable charset (UTF-8 unless the header names a known one)."""
    media_type, _, params = header.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = _known_charset(value.strip().strip('"'))
    return media_type.strip().lower(), charset


def _known_charset(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a codec that is not a text encoding (charset=rot13, base64, ...)
        return body.decode("utf-8", errors="replace")


async def _read_capped(url: httpx.URL, response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"{url}: the document is larger than {max_bytes} bytes")
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise FetchRefused(f"{url}: the document is larger than {max_bytes} bytes")
    except httpx.TimeoutException as exc:
        raise FetchUnavailable(f"{url}: timed out while reading") from exc
    except httpx.HTTPError as exc:
        raise FetchUnavailable(f"{url}: the connection failed while reading ({type(exc).__name__})") from exc
    return bytes(body)


async def _pdf_text(url: httpx.URL, body: bytes, limits: _Limits) -> str:
    name = url.path.rsplit("/", 1)[-1] or "document.pdf"
    pdf = await extract_pdf_text_async(name, body, timeout_seconds=limits.timeout, max_bytes=limits.max_bytes)
    if pdf is None:
        raise FetchRefused(f"{url}: the PDF could not be read (password-protected or damaged)")
    return pdf.text


def _allow_list(entries: Iterable[str]) -> frozenset[tuple[str, int | None]]:
    """``host`` or ``host:port`` entries (IPv6 in brackets when a port follows) as match keys."""
    keys: set[tuple[str, int | None]] = set()
    for entry in entries:
        text = entry.strip()
        if _ip_or_none(text.strip("[]")) is not None:
            keys.add((_host_key(text.strip("[]")), None))
            continue
        try:
            parsed = httpx.URL(f"http://{text}/")
        except httpx.InvalidURL as exc:
            raise FetchRefused(f"allowed host {entry!r} is not a host name") from exc
        if not parsed.host or parsed.userinfo or parsed.path != "/":
            raise FetchRefused(f"allowed host {entry!r} is not a host name")
        keys.add((_host_key(parsed.host), parsed.port))
    return frozenset(keys)


def _host_key(host: str) -> str:
    """One spelling per host: lower case, no trailing dot, IP addresses in canonical form."""
    address = _ip_or_none(host)
    return str(address) if address is not None else host.lower().rstrip(".")
