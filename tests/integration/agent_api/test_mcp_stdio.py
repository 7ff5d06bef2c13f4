"""The MCP server over stdio: the official ``mcp`` SDK client starts ``mailhook mcp`` as a child
process, which talks to the same database as the running app.

The transport does not depend on the database, and starting the child costs seconds, so this
module runs on SQLite only (its own ``database_url``); the tools' database behaviour is covered on
both databases over HTTP (test_mcp.py) and REST.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from mailhook.services import Services
from tests.integration.agent_api.conftest import MakeKey
from tests.integration.agent_api.test_mcp import exercise
from tests.support import outbox

MAILHOOK = str(Path(sys.executable).with_name("mailhook"))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (see the module docstring)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


async def test_mcp_over_stdio(api: httpx.AsyncClient, services: Services, make_key: MakeKey) -> None:
    key = await make_key(trust="autonomous")
    settings = services.settings
    env = {
        "MAILHOOK_DATA_DIR": str(settings.data_dir),
        "MAILHOOK_DATABASE_URL": settings.database_url,
        "MAILHOOK_LOG_LEVEL": "WARNING",
        "MAILHOOK_AGENT_MCP_KEY": key,
    }
    params = StdioServerParameters(
        command=MAILHOOK, args=["mcp", "--key-env", "MAILHOOK_AGENT_MCP_KEY"], env=env
    )
    async with Client(params) as client:
        await exercise(client)
    assert [m["To"] for m in await outbox(services)] == ["kim@example.org"]
    audit = await services.agent.audit.page(await _owner(services), 1)
    assert {e.channel for e in audit.items} == {"mcp"} and audit.total == 4

    wrong = {**os.environ, **env, "MAILHOOK_AGENT_MCP_KEY": "mh_live_" + "A" * 43}
    refused = await asyncio.to_thread(
        subprocess.run,
        [MAILHOOK, "mcp", "--key-env", "MAILHOOK_AGENT_MCP_KEY"],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "invalid API key" in refused.stderr and refused.stdout == ""


async def _owner(services: Services) -> Any:
    from mailhook.store.accounts import Accounts

    return await Accounts(services.sessions).user_by_email("owner@example.com")
