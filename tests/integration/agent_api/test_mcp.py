"""The MCP server over streamable HTTP, driven by the official ``mcp`` SDK client against the
running app (the stdio transport: test_mcp_stdio.py)."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mailhook.services import Services
from tests.integration.agent_api.conftest import MakeKey
from tests.support import outbox

TOOLS = {
    "check_inbox",
    "read_email",
    "get_thread",
    "send_email",
    "reply_email",
    "draft_reply",
    "list_pending",
    "decide_email",
}


def text_of(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


async def exercise(client: Client) -> None:
    """What both transports must do alike."""
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    inbox = await client.call_tool("check_inbox", {})
    assert not inbox.is_error and inbox.structured_content == {"messages": []}
    sent = await client.call_tool(
        "send_email", {"to": ["kim@example.org"], "subject": "Hello", "text": "From an MCP client."}
    )
    assert not sent.is_error, text_of(sent)
    assert sent.structured_content is not None and sent.structured_content["status"] == "sent"
    missing = await client.call_tool("read_email", {"message_id": 999})
    assert missing.is_error and "NotFound" in text_of(missing)
    refused = await client.call_tool("decide_email", {"pending_id": 1, "decision": "approve"})
    assert refused.is_error and "Forbidden" in text_of(refused), "an agent-scope key cannot decide"


async def test_mcp_over_streamable_http(
    api: httpx.AsyncClient, services: Services, make_key: MakeKey
) -> None:
    key = await make_key(trust="autonomous")
    url = f"{api.base_url}".rstrip("/") + "/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await exercise(client)
    assert [m["To"] for m in await outbox(services)] == ["kim@example.org"]
    for headers in ({}, {"Authorization": "Bearer mh_live_" + "A" * 43}):
        refused = await api.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers
        )
        assert refused.status_code == 401
