"""Fixtures of the agent API tests: the owner's token, the mailbox, and keys made over REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailhook.api.auth import issue_token
from mailhook.services import Services
from mailhook.store.models import Mailbox, User

MakeKey = Callable[..., Awaitable[str]]


@pytest.fixture
async def owner(api: httpx.AsyncClient, services: Services) -> dict[str, str]:
    """``Authorization`` header of owner@example.com (the ``api`` fixture's user)."""
    async with services.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "owner@example.com"))
    assert user_id is not None
    return {"Authorization": f"Bearer {issue_token(user_id, services.settings.security.jwt_secret)}"}


@pytest.fixture
async def mailbox_id(api: httpx.AsyncClient, services: Services) -> int:
    """Id of bot@agents.test."""
    async with services.sessions() as session:
        found = await session.scalar(select(Mailbox.id).where(Mailbox.address == "bot@agents.test"))
    assert found is not None
    return found


@pytest.fixture
def make_key(api: httpx.AsyncClient, owner: dict[str, str], mailbox_id: int) -> MakeKey:
    """Create a key over the owner API; returns the ``Authorization`` value's key."""

    async def make(
        *,
        trust: str = "autonomous",
        scope: str = "agent",
        test: bool = False,
        mailbox: int | None = None,
        **kw: Any,
    ) -> str:
        body = {"name": kw.pop("name", f"{trust}-{scope}"), "trust": trust, "scope": scope, "test": test}
        response = await api.post(
            f"/api/v1/mailboxes/{mailbox or mailbox_id}/keys", json=body, headers=kw.pop("headers", owner)
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    return make


def bearer(key: str) -> dict[str, str]:
    """Header for an agent key."""
    return {"Authorization": f"Bearer {key}"}
