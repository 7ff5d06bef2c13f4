"""``/mcp``: the MCP tools over streamable HTTP, mounted in the Litestar app.

The key is checked before the MCP transport sees the request (``401`` otherwise) and counted
against its request limit (``429`` with ``Retry-After`` past it, as over REST:
``agentapi/limits.py``); every tool call checks it again. Stateless mode: each POST carries its
own key, nothing is kept between requests, and any node of a cluster can answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse

from mailhook.agentapi.limits import KeyRateLimited
from mailhook.agentapi.primitives import AgentPrimitives
from mailhook.errors import Unauthorized
from mailhook.mcp.server import McpTools

#: Largest MCP request body (attachments travel base64-encoded, as over REST).
MAX_BODY_BYTES = 8 * 1024 * 1024


class McpHttp:
    """The session manager of the app's MCP endpoint, and its lifespan."""

    def __init__(self, primitives: AgentPrimitives) -> None:
        self._primitives = primitives
        server = McpTools(primitives).build()
        self.manager = StreamableHTTPSessionManager(
            server._lowlevel_server,  # what MCPServer.streamable_http_app mounts too
            json_response=True,
            stateless=True,
            max_request_body_size=MAX_BODY_BYTES,
        )

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Run the session manager's task group while the app runs."""
        async with self.manager.run():
            yield

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse requests without a valid key; hand the others to the MCP transport."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        refusal: JSONResponse | None = None
        try:
            await self._primitives.admit(token.strip() if scheme.lower() == "bearer" else "")
        except Unauthorized as exc:
            refusal = _refusal(401, exc, {"WWW-Authenticate": "Bearer"})
        except KeyRateLimited as exc:
            refusal = _refusal(429, exc, {"Retry-After": str(exc.retry_after)}, retry_after=exc.retry_after)
        if refusal is not None:
            await refusal(scope, receive, send)  # type: ignore[arg-type]
            return
        await self.manager.handle_request(scope, receive, send)  # type: ignore[arg-type]


def _refusal(status: int, exc: Exception, headers: dict[str, str], **extra: int) -> JSONResponse:
    error = "Unauthorized" if status == 401 else "RateLimited"
    return JSONResponse({"error": error, "detail": str(exc), **extra}, status_code=status, headers=headers)


@asgi("/mcp", is_mount=True, copy_scope=True)
async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """The app's MCP endpoint (see :class:`McpHttp`)."""
    mcp_http: Any = Litestar.from_scope(scope).state.mcp_http
    await mcp_http.handle(scope, receive, send)
