"""Signed POSTs to vetted addresses: no redirects, no proxies, one deadline, body discarded.

The request goes to the address :mod:`.urls` vetted, with the URL's own ``Host`` header and TLS
SNI name (so virtual hosting and certificate checks work), as :mod:`mailhook.net.fetch` does.

Connections are kept alive between deliveries. httpx pools them by (scheme, IP, port), which here
would let a TLS connection opened (and certificate-checked) for host A carry a request for host B
on the same address. So each (scheme, host name, port, vetted address) gets a client of its own:
a pooled connection only ever serves the name it was opened for, and a new DNS answer (the address
is vetted again before every request) is a new key, never an old connection. The clients are few
(least recently used ones are closed) and live until :meth:`Sender.close`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from mailhook import __version__
from mailhook.webhooks.urls import Target

USER_AGENT = f"mailhook-webhooks/{__version__}"
MAX_CLIENTS = 64

_TLS = ssl.create_default_context()

#: (scheme, host name, port, vetted address): what one client's connections may serve.
ClientKey = tuple[str, str, int, str]


#: Bytes of an answer's body skipped (never kept) so that its connection can serve the next request.
DISCARD_LIMIT = 64 * 1024


class SendFailed(Exception):
    """No HTTP answer (timeout, refused connection, TLS failure); ``str`` is safe to store."""


@dataclass
class _Client:
    http: httpx.AsyncClient
    busy: int = 0
    evicted: bool = False


async def _discard(response: httpx.Response) -> None:
    """Skip a small body so the connection can be reused; a larger one is cut off with it.

    HTTP/1.1 reuses a connection only once the whole answer was taken off it (RFC 9112, 9.3);
    closing a response with its body unread makes httpx drop the connection. The bytes are
    counted and thrown away, never decoded, logged or stored.
    """
    skipped = 0
    try:
        async for chunk in response.aiter_raw():
            skipped += len(chunk)
            if skipped > DISCARD_LIMIT:
                break
    finally:
        await response.aclose()


def key_of(target: Target) -> ClientKey:
    """The client a request to ``target`` may use."""
    url = target.url
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.raw_host.decode("ascii").lower(), port, str(target.address))


class Sender:
    """Keeps one small connection pool per :func:`key_of`, for the dispatcher's lifetime."""

    def __init__(self, timeout: float, max_clients: int = MAX_CLIENTS) -> None:
        self._timeout = timeout
        self._max = max_clients
        self._clients: OrderedDict[ClientKey, _Client] = OrderedDict()

    @property
    def clients(self) -> int:
        """How many clients are open (for tests and logs)."""
        return len(self._clients)

    async def post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the answer's status code (its body is never read)."""
        url = target.url
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        try:
            async with asyncio.timeout(self._timeout), self._client(key_of(target)) as client:
                request = client.build_request(
                    "POST",
                    url.copy_with(host=str(target.address)),
                    content=body,
                    headers={
                        **headers,
                        "Host": url.netloc.decode("ascii"),
                        "User-Agent": USER_AGENT,
                        "Content-Type": "application/json",
                    },
                    extensions=extensions,
                )
                response = await client.send(request, stream=True, follow_redirects=False)
                await _discard(response)
                return response.status_code
        except TimeoutError:
            raise SendFailed(f"no answer within {self._timeout:g} s") from None
        except httpx.TimeoutException:
            raise SendFailed(f"no answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"cannot connect ({type(exc).__name__})") from None

    async def close(self) -> None:
        """Close every client (requests still running finish first: theirs close after)."""
        while self._clients:
            _, client = self._clients.popitem(last=False)
            await self._retire(client)

    @asynccontextmanager
    async def _client(self, key: ClientKey) -> AsyncIterator[httpx.AsyncClient]:
        client = self._clients.get(key) or _Client(self._new_http())
        self._clients[key] = client
        self._clients.move_to_end(key)
        client.busy += 1  # before any await: this client cannot be closed under the request
        try:
            while len(self._clients) > self._max:
                _, oldest = self._clients.popitem(last=False)
                await self._retire(oldest)
            yield client.http
        finally:
            client.busy -= 1
            if client.evicted and not client.busy:
                await client.http.aclose()

    async def _retire(self, client: _Client) -> None:
        """Close a client no longer in the table, or let its last request close it."""
        client.evicted = True
        if not client.busy:
            await client.http.aclose()

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout), trust_env=False, follow_redirects=False, verify=_TLS
        )
