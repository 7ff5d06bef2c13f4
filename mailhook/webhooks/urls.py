"""Which webhook URLs mailhook will call, and at which address (SSRF defence).

A webhook URL is chosen by a user, so without care it is a way into the operator's network
(the cloud metadata service at 169.254.169.254, the admin API on loopback, databases on RFC 1918
addresses). The address rules are those of :mod:`mailhook.net.hosts`
(:func:`~mailhook.net.hosts.vetted_addresses`): every address the host resolves to must be
public, unless the operator listed the host in ``webhooks.allow_hosts``. The check runs when the URL is
registered AND before every request, and the request goes to the address that was checked (a
second DNS answer cannot swap in a private one).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mailhook.errors import ValidationFailed
from mailhook.net.hosts import HostRefused, IPAddress, Resolver, parse_allow_list, vetted_addresses
from mailhook.settings import WebhookSettings

MAX_URL_CHARS = 2048


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
        # The setting was checked at start-up; a malformed entry here just matches nothing.
        self._allow = parse_allow_list(settings.allow_hosts, skip_invalid=True)
        self._resolver = resolver

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
        host = url.raw_host.decode("ascii")
        try:
            addresses = await vetted_addresses(host, port, allow=self._allow, resolver=self._resolver)
        except HostRefused as exc:
            hint = "; webhooks go to public addresses" if exc.address is not None else ""
            raise WebhookUrlRefused(f"{exc}{hint}") from None
        return Target(url, addresses[0])
