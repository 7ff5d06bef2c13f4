"""Fetches the documents a mailbox owner configured, without becoming a way into the private network.

A mailhook node usually sits next to things that must never be reachable from mail: the cloud
metadata service (169.254.169.254), the admin API on loopback, databases on RFC 1918 addresses. A
URL alone proves nothing about where it leads, so :func:`fetch_document`:

* accepts only ``http``/``https`` URLs without user-info;
* vets the host with :func:`mailhook.net.hosts.vetted_addresses`: refused if *any* address is
  not public, unless the host is in ``allow_hosts`` or ``allow_private`` is set;
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
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import httpx

from mailhook import __version__
from mailhook.agent.pdf import extract_pdf_text_async
from mailhook.errors import TemporaryFailure, ValidationFailed
from mailhook.net.hosts import (
    AllowList,
    HostRefused,
    HostUnresolvable,
    IPAddress,
    Resolver,
    blocked_reason,
    parse_allow_list,
    vetted_addresses,
)

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

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TEXT_TYPES = frozenset({"application/json", "application/xml"})
_PDF = "application/pdf"
_ACCEPT = "text/*, application/json, application/xml, application/pdf;q=0.9"


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
    """Who may be fetched: the allow-list (or the private-network switch) and the resolver."""

    allow: AllowList
    resolver: Resolver | None


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
    try:
        allow = dataclasses.replace(parse_allow_list(allow_hosts), everything=allow_private)
    except ValueError as exc:
        raise FetchRefused(str(exc)) from None
    policy = _Policy(allow, resolver)
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
    host = url.raw_host.decode("ascii")
    try:
        addresses = await vetted_addresses(host, port, allow=policy.allow, resolver=policy.resolver)
    except HostUnresolvable as exc:
        raise FetchUnavailable(str(exc)) from None
    except HostRefused as exc:
        hint = "; add the host to the allowed hosts to fetch it" if exc.address is not None else ""
        raise FetchRefused(f"{exc}{hint}") from None
    return addresses[0]


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
