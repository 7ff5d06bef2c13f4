"""Fixtures of the webhook and activity-stream tests: fast polling, http to 127.0.0.1 allowed
(the receiver is local), a receiver, and signed-in users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mailhook.services import Services
from mailhook.store.accounts import Accounts
from mailhook.store.models import Mailbox, User
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import token_users

PASSWORD = "correct horse battery"


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {
        "MAILHOOK_WEBHOOKS_ALLOW_HTTP": "true",
        "MAILHOOK_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
        "MAILHOOK_WEBHOOKS_POLL_SECONDS": "0.1",
        "MAILHOOK_WEBHOOKS_BACKOFF_SECONDS": "0.2",
        "MAILHOOK_WEBHOOKS_TIMEOUT_SECONDS": "5",
        "MAILHOOK_HTTP_SSE_POLL_SECONDS": "0.1",
        "MAILHOOK_HTTP_SSE_KEEPALIVE_SECONDS": "0.5",
        "MAILHOOK_HTTP_SSE_MAX_STREAMS_PER_USER": "2",
    }


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


@pytest.fixture
async def owner(api: httpx.AsyncClient) -> dict[str, str]:
    """Bearer header of owner@example.com (created by the ``api`` fixture)."""
    response = await api.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
async def owner_and_mailbox(services: Services) -> tuple[User, Mailbox]:
    """owner@example.com and their bot@agents.test, without the app (the tests drive the loop)."""
    [(user_id, _)] = await token_users(services, "owner@example.com")
    mailbox = await Accounts(services.sessions).add_mailbox("owner@example.com", "bot@agents.test")
    async with services.sessions() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user, mailbox
