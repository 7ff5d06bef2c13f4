"""A mailbox's own model URL: an address a tenant chooses, so an SSRF vector unless vetted.

A tenant who could point ``llm_base_url`` at ``http://169.254.169.254/`` or the admin API on
loopback would have mailhook send requests there on every message. :func:`check_model_url` holds
such a URL to the rules documents are fetched under (``mailhook.net.fetch``): ``https`` only
(``llm.mailbox_allow_http`` admits ``http``), no user-info, query or fragment, and every address
the host resolves to must be public (:func:`mailhook.net.fetch.blocked_reason`) unless the host is
in ``agent.fetch_allow_hosts``. It runs when the URL is set (a ``400``) and again before each use,
so a DNS change after the check is caught at the next message. (The provider's HTTP client
resolves the name once more when it connects; pinning the address as ``net.fetch`` does is not
possible through the Anthropic SDK, so a rebinding window of one lookup remains.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Final

import httpx

from mailhook.errors import ValidationFailed
from mailhook.net.fetch import blocked_reason

#: ``(host, port) -> addresses``; injectable so tests never need real DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL: Final = 500  # the column's size
RESOLVE_TIMEOUT: Final = 5.0
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


class ModelUrlRefused(ValidationFailed):
    """The URL is not allowed (scheme, shape, or where it leads); retrying will not help."""


class ModelUrlUnresolvable(ValidationFailed):
    """The host name has no address now (it may have one later)."""


async def check_model_url(
    url: str, *, allow_hosts: str = "", allow_http: bool = False, resolver: Resolver | None = None
) -> str:
    """``url`` without a trailing slash if a mailbox may use it as its model endpoint."""
    parsed = _parsed(url, allow_http)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if _allowed(parsed.host, port, allow_hosts):
        return url.rstrip("/")
    for address in await _addresses(parsed, port, resolver or _system_resolver):
        reason = blocked_reason(address)
        if reason is not None:
            where = parsed.host if _ip(parsed.host) else f"{parsed.host} resolves to {address},"
            raise ModelUrlRefused(
                f"llm_base_url: {where} {reason}; an administrator can allow the host "
                "(agent.fetch_allow_hosts)"
            )
    return url.rstrip("/")


def _parsed(url: str, allow_http: bool) -> httpx.URL:
    if len(url) > MAX_URL:
        raise ModelUrlRefused(f"llm_base_url must be at most {MAX_URL} characters")
    if _SPACE_OR_CONTROL.search(url):
        raise ModelUrlRefused("llm_base_url must not contain spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ModelUrlRefused("llm_base_url is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes:
        allowed = "http:// or https://" if allow_http else "https://"
        raise ModelUrlRefused(f"llm_base_url must start with {allowed}")
    if not parsed.host:
        raise ModelUrlRefused("llm_base_url has no host")
    if parsed.userinfo:
        raise ModelUrlRefused("llm_base_url must not contain a user name or password (use llm_api_key)")
    if parsed.query or parsed.fragment:
        raise ModelUrlRefused("llm_base_url must not contain a query or a fragment")
    return parsed


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _host_key(host: str) -> str:
    address = _ip(host.strip("[]"))
    return str(address) if address is not None else host.lower().rstrip(".")


def _allowed(host: str, port: int, allow_hosts: str) -> bool:
    """``host`` (any port) or ``host:port`` is in the comma-separated allow-list."""
    key = _host_key(host)
    for entry in (e.strip() for e in allow_hosts.split(",")):
        if not entry:
            continue
        if _ip(entry.strip("[]")) is not None:
            if _host_key(entry) == key:
                return True
            continue
        try:
            allowed = httpx.URL(f"http://{entry}/")
        except httpx.InvalidURL:
            continue  # the same setting feeds net.fetch, which reports a malformed entry
        if _host_key(allowed.host) == key and allowed.port in (None, port):
            return True
    return False


async def _addresses(
    url: httpx.URL, port: int, resolver: Resolver
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    literal = _ip(url.host)
    if literal is not None:
        return [literal]
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            answers = await resolver(url.raw_host.decode("ascii"), port)
    except (OSError, TimeoutError):
        raise ModelUrlUnresolvable(f"llm_base_url: cannot resolve {url.host}") from None
    addresses = [_ip(answer) for answer in answers]
    if not addresses:
        raise ModelUrlUnresolvable(f"llm_base_url: {url.host} has no addresses")
    if None in addresses:
        raise ModelUrlRefused("llm_base_url: the resolver returned something that is not an address")
    return [address for address in addresses if address is not None]


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
