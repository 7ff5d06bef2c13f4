"""Fixtures of the webhook and activity-stream tests: fast polling, http to 127.0.0.1 allowed
(the receiver is local), a receiver, and signed-in users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.webhook_receiver import WebhookReceiver

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
