"""One signed POST to a vetted address: no redirects, no proxies, one deadline, body unread.

The request goes to the address :mod:`.urls` vetted, with the URL's own ``Host`` header and TLS
SNI name (so virtual hosting and certificate checks work), as :mod:`mailhook.net.fetch` does.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from mailhook import __version__
from mailhook.webhooks.urls import Target

USER_AGENT = f"mailhook-webhooks/{__version__}"


class SendFailed(Exception):
    """No HTTP answer (timeout, refused connection, TLS failure); ``str`` is safe to store."""


_TLS = ssl.create_default_context()


async def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:  # noqa: ASYNC109
    """POST ``body``; the answer's status code (its body is never read)."""
    url = target.url
    host = url.raw_host.decode("ascii")
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False, verify=_TLS
            ) as client,
        ):
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
            await response.aclose()
            return response.status_code
    except TimeoutError:
        raise SendFailed(f"no answer within {timeout:g} s") from None
    except httpx.TimeoutException:
        raise SendFailed(f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SendFailed(f"cannot connect ({type(exc).__name__})") from None
