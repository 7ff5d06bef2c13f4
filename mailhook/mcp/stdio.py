"""``mailhook mcp``: the MCP tools over stdio for one key, talking to the database directly.

For desktop MCP clients (Claude Desktop and others) that start a local command. The key comes
from an environment variable, never from the command line (which other local users can read in
the process list). The key is checked at start, so a wrong key fails at once with a clear
message on stderr; stdout carries only the MCP protocol.
"""

from __future__ import annotations

from mailhook.mcp.server import McpTools
from mailhook.services import Services


async def serve_stdio(services: Services, key: str) -> None:
    """Serve until the client closes stdin."""
    await services.agent.keys.authenticate(key)
    await McpTools(services.agent, stdio_key=key).build().run_stdio_async()
