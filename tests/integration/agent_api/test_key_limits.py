"""Per-key rate limits over REST and MCP: a key past its limit gets a 429 with ``Retry-After``
while another key from the same address is still served; sends have a lower limit of their own.

The limits come from the settings (``extra_env``); the clock of the limiter is frozen so that no
token comes back while a test runs, whatever the machine's speed.
"""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mailhook.agentapi.limits import KeyLimits
from mailhook.services import Services
from tests.integration.agent_api.conftest import MakeKey, bearer
from tests.integration.agent_api.test_mcp import text_of
from tests.support import outbox

LIMITS = {"MAILHOOK_AGENT_KEY_REQUESTS_PER_MINUTE": "5", "MAILHOOK_AGENT_KEY_SENDS_PER_MINUTE": "2"}
pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.parametrize("extra_env", [LIMITS]),
]

INBOX = "/api/v1/agent/inbox"
MAIL = {"to": ["kim@example.org"], "subject": "Hello", "text": "A short note."}


@pytest.fixture
def frozen(services: Services) -> None:
    """The configured limits on a clock that does not move."""
    services.agent.limits = KeyLimits.from_settings(services.settings.agent, clock=lambda: 1000.0)


def assert_limited(response: httpx.Response, limit: str, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    body = response.json()
    assert body["error"] == "RateLimited" and body["retry_after"] == retry_after
    assert limit in body["detail"] and f"retry in {retry_after} s" in body["detail"]


async def test_a_key_over_its_limit_does_not_hold_up_another(
    api: httpx.AsyncClient, make_key: MakeKey, frozen: None
) -> None:
    first, second = await make_key(name="busy"), await make_key(name="quiet")
    for _ in range(5):
        assert (await api.get(INBOX, headers=bearer(first))).status_code == 200
    # 5 a minute is one token every 12 s.
    assert_limited(await api.get(INBOX, headers=bearer(first)), "5 requests per minute", 12)
    assert_limited(await api.post("/api/v1/agent/send", json=MAIL, headers=bearer(first)), "5 requests", 12)
    assert (await api.get(INBOX, headers=bearer(second))).status_code == 200, "same address, other key"
    # Unauthenticated requests never reach a key's bucket: they stay 401.
    for headers in ({}, bearer("mh_live_" + "A" * 43), {"Authorization": "Bearer not-a-key"}):
        assert (await api.get(INBOX, headers=headers)).status_code == 401


async def test_sends_have_a_lower_limit(
    api: httpx.AsyncClient,
    services: Services,
    owner: dict[str, str],
    mailbox_id: int,
    make_key: MakeKey,
    frozen: None,
) -> None:
    sender, other = await make_key(name="sender"), await make_key(name="other")
    for _ in range(2):
        sent = await api.post("/api/v1/agent/send", json=MAIL, headers=bearer(sender))
        assert sent.status_code == 200 and sent.json()["status"] == "sent", sent.text
    # 2 a minute is one token every 30 s.
    assert_limited(
        await api.post("/api/v1/agent/send", json=MAIL, headers=bearer(sender)), "2 messages sent", 30
    )
    assert_limited(
        await api.post("/api/v1/agent/messages/1/reply", json={"text": "Hi"}, headers=bearer(sender)),
        "2 messages sent",
        30,
    )
    drafted = await api.post("/api/v1/agent/messages/1/draft", json={"text": "Hi"}, headers=bearer(sender))
    assert drafted.status_code == 404, "a draft sends nothing, so it is not held to the send limit"
    assert (await api.post("/api/v1/agent/send", json=MAIL, headers=bearer(other))).status_code == 200
    assert len(await outbox(services)) == 3

    trail = (await api.get(f"/api/v1/mailboxes/{mailbox_id}/audit", headers=owner)).json()["items"]
    refused = [e for e in trail if e["outcome"] == "KeyRateLimited"]
    assert sorted(e["action"] for e in refused) == ["reply_email", "send_email"], "the owner sees it"


async def test_mcp_over_http_shares_the_key_limits(
    api: httpx.AsyncClient, services: Services, make_key: MakeKey, frozen: None
) -> None:
    used_up, fresh = await make_key(name="rest"), await make_key(name="mcp")
    for _ in range(5):
        assert (await api.get(INBOX, headers=bearer(used_up))).status_code == 200
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert_limited(await api.post("/mcp", json=listing, headers=bearer(used_up)), "5 requests per minute", 12)

    url = f"{api.base_url}".rstrip("/") + "/mcp"
    async with (
        httpx2.AsyncClient(headers=bearer(fresh), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        sends: list[Any] = [await client.call_tool("send_email", dict(MAIL)) for _ in range(3)]
    assert [s.is_error for s in sends] == [False, False, True]
    assert "KeyRateLimited" in text_of(sends[2]) and "retry in 30 s" in text_of(sends[2])
    assert len(await outbox(services)) == 2
