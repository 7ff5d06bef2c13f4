"""Which webhook URLs mailhook will call, and at which address (SSRF defence).

A webhook URL is chosen by a user, so without care it is a way into the operator's network
(the cloud metadata service at 169.254.169.254, the admin API on loopback, databases on RFC 1918
addresses). The address rules are those of :mod:`mailhook.net.fetch`
(:func:`~mailhook.net.fetch.blocked_reason`): every address the host resolves to must be public,
unless the operator listed the host in ``webhooks.allow_hosts``. The check runs when the URL is
registered AND before every request, and the request goes to the address that was checked (a
second DNS answer cannot swap in a private one).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from mailhook.errors import ValidationFailed
from mailhook.net.fetch import Resolver, blocked_reason
from mailhook.settings import WebhookSettings

MAX_URL_CHARS = 2048
RESOLVE_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlRefused(ValidationFailed):
    """The URL is not one mailhook will call (scheme, shape or where it leads)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL and the address to connect to."""

    url: httpx.URL
    address: IPAddress


class UrlPolicy:
    """The operator's rules for webhook URLs."""

    def __init__(self, settings: WebhookSettings, resolver: Resolver | None = None) -> None:
        self._allow_http = settings.allow_http
        self._allowed = frozenset(
            entry.strip().lower().rstrip(".") for entry in settings.allow_hosts.split(",") if entry.strip()
        )
        self._resolver = resolver or _system_resolver

    def checked(self, raw: str) -> httpx.URL:
        """``raw`` parsed, if its shape is acceptable (no DNS)."""
        if len(raw) > MAX_URL_CHARS:
            raise WebhookUrlRefused(f"the URL is longer than {MAX_URL_CHARS} characters")
        try:
            url = httpx.URL(raw)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise WebhookUrlRefused("not a valid URL") from None
        allowed = ("https", "http") if self._allow_http else ("https",)
        if url.scheme not in allowed:
            raise WebhookUrlRefused(f"only {' and '.join(allowed)} URLs can receive webhooks")
        if url.userinfo:
            raise WebhookUrlRefused("URLs with a user name or password are not allowed")
        if not url.host:
            raise WebhookUrlRefused("the URL has no host")
        return url

    async def target(self, raw: str) -> Target:
        """The URL and the vetted address to send to; :class:`WebhookUrlRefused` otherwise."""
        url = self.checked(raw)
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self._resolve(url, port)
        if not self._allows(url.host, port):
            for address in addresses:
                reason = blocked_reason(address)
                if reason is not None:
                    raise WebhookUrlRefused(f"{url.host} leads to {reason}; webhooks go to public addresses")
        first = addresses[0]
        if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped is not None:
            first = first.ipv4_mapped
        return Target(url, first)

    def _allows(self, host: str, port: int) -> bool:
        key = host.lower().rstrip(".")
        literal = _ip_or_none(key)
        if literal is not None:
            key = str(literal)
        return key in self._allowed or f"{key}:{port}" in self._allowed

    async def _resolve(self, url: httpx.URL, port: int) -> list[IPAddress]:
        literal = _ip_or_none(url.host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                answers = await self._resolver(url.raw_host.decode("ascii"), port)
        except (OSError, TimeoutError):
            raise WebhookUrlRefused(f"{url.host}: cannot resolve the host name") from None
        addresses = [_ip_or_none(answer) for answer in answers]
        found = [a for a in addresses if a is not None]
        if not found or len(found) != len(addresses):
            raise WebhookUrlRefused(f"{url.host}: the host name has no usable address")
        return found


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
