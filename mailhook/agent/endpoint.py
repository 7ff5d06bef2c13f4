"""A mailbox's own model URL: an address a tenant chooses, so an SSRF vector unless vetted.

A tenant who could point ``llm_base_url`` at ``http://169.254.169.254/`` or the admin API on
loopback would have mailhook send requests there on every message. :func:`check_model_url` holds
such a URL to the rules documents are fetched under (``mailhook.net.fetch``): ``https`` only
(``llm.mailbox_allow_http`` admits ``http``), no user-info, query or fragment, and every address
the host resolves to must be public (:func:`mailhook.net.hosts.vetted_addresses`) unless the host
is in ``agent.fetch_allow_hosts``. It runs when the URL is set (a ``400``) and again before each use,
so a DNS change after the check is caught at the next message. (The provider's HTTP client
resolves the name once more when it connects; pinning the address as ``net.fetch`` does is not
possible through the Anthropic SDK, so a rebinding window of one lookup remains.)
"""

from __future__ import annotations

import re
from typing import Final

import httpx

from mailhook.errors import ValidationFailed
from mailhook.net.hosts import HostRefused, HostUnresolvable, Resolver, parse_allow_list, vetted_addresses

__all__ = ["MAX_URL", "ModelUrlRefused", "ModelUrlUnresolvable", "Resolver", "check_model_url"]

MAX_URL: Final = 500  # the column's size
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
    host = parsed.raw_host.decode("ascii")
    # The setting was checked at start-up; a malformed entry here just matches nothing.
    allow = parse_allow_list(allow_hosts, skip_invalid=True)
    if allow.allows(host, port):
        return url.rstrip("/")  # an allowed host need not even resolve now
    try:
        await vetted_addresses(host, port, allow=allow, resolver=resolver)
    except HostUnresolvable as exc:
        raise ModelUrlUnresolvable(f"llm_base_url: {exc}") from None
    except HostRefused as exc:
        hint = (
            "" if exc.address is None else "; an administrator can allow the host (agent.fetch_allow_hosts)"
        )
        raise ModelUrlRefused(f"llm_base_url: {exc}{hint}") from None
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
