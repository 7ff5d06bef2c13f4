"""API: health, login, the outbox (tenant isolation) and dead letters (admins only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import jwt
import pytest

from mailhook.app import create_app
from mailhook.services import Services
from mailhook.store.accounts import Accounts
from mailhook.store.models import utcnow
from tests.http import serve_http
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

PASSWORD = "correct horse battery"


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", PASSWORD)
    await accounts.create_user("other@example.com", PASSWORD)
    await accounts.create_user("admin@example.com", PASSWORD, is_admin=True)
    await accounts.add_mailbox("owner@example.com", "bot@agents.test")
    await accounts.add_mailbox("other@example.com", "sales@agents.test")
    app = create_app(services, migrate=False)
    async with (
        serve_http(app, services.settings.http.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield http


async def token(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_health_and_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert (await client.get("/schema/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "owner@example.com", "password": "wrong password!"}, 401),
        ({"email": "nobody@example.com", "password": PASSWORD}, 401),
        ({"email": "not-an-address", "password": PASSWORD}, 401),
        ({"email": "owner@example.com"}, 400),
        ({"email": "x" * 5000 + "@example.com", "password": PASSWORD}, 400),
        ([1, 2, 3], 400),
    ],
)
async def test_login_rejects_bad_input(client: httpx.AsyncClient, body: object, status: int) -> None:
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == status
    assert PASSWORD not in response.text


async def test_login_rejects_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_bad_tokens_are_401(client: httpx.AsyncClient, services: Services) -> None:
    secret = services.settings.security.jwt_secret
    expired = jwt.encode({"sub": "1", "exp": int((utcnow() - timedelta(minutes=1)).timestamp())}, secret)
    forged = jwt.encode({"sub": "1", "exp": 9999999999}, "not-the-secret-" * 3)
    unsigned = jwt.encode({"sub": "1", "exp": 9999999999}, None, algorithm="none")
    for header in ("", "Bearer", "Basic abc", f"Bearer {expired}", f"Bearer {forged}", f"Bearer {unsigned}"):
        response = await client.get("/api/v1/outbox", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_outbox_is_per_owner(client: httpx.AsyncClient, services: Services) -> None:
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message())
    await wait_for_jobs(services, 1)
    owner, other = await token(client, "owner@example.com"), await token(client, "other@example.com")
    mine = (await client.get("/api/v1/outbox", headers=owner)).json()
    assert len(mine) == 1 and mine[0]["recipients"] == ["alice@example.org"]
    item = await client.get(f"/api/v1/outbox/{mine[0]['id']}", headers=owner)
    assert item.status_code == 200
    assert "Auto-Submitted: auto-replied" in item.json()["message"]
    assert (await client.get("/api/v1/outbox", headers=other)).json() == []
    assert (await client.get(f"/api/v1/outbox/{mine[0]['id']}", headers=other)).status_code == 404


async def test_dead_letters_are_for_admins(client: httpx.AsyncClient) -> None:
    owner, admin = await token(client, "owner@example.com"), await token(client, "admin@example.com")
    assert (await client.get("/api/v1/dead-letters", headers=owner)).status_code == 403
    assert (await client.post("/api/v1/dead-letters/1/retry", headers=owner)).status_code == 403
    assert (await client.get("/api/v1/dead-letters", headers=admin)).json() == []
    assert (await client.post("/api/v1/dead-letters/999/retry", headers=admin)).status_code == 404


async def test_activity_links_a_reply_kept_in_the_outbox(
    client: httpx.AsyncClient, services: Services
) -> None:
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message())
    auto = make_message(
        sender="carol@example.org", subject="away", extra_headers={"Auto-Submitted": "auto-replied"}
    )
    await asyncio.to_thread(lmtp_send, port, "carol@example.org", ["bot@agents.test"], auto)
    await wait_for_jobs(services, 2)
    owner, other = await token(client, "owner@example.com"), await token(client, "other@example.com")
    [mailbox] = (await client.get("/api/v1/mailboxes", headers=owner)).json()
    response = await client.get(f"/api/v1/mailboxes/{mailbox['id']}/activity", headers=owner)
    assert response.status_code == 200, response.text
    page = response.json()
    by_action = {item["action"]: item for item in page["items"]}
    assert by_action["skipped"]["reply_outbox_id"] is None, "nothing was sent for an auto-reply"
    outbox_id = by_action["replied"]["reply_outbox_id"]
    reply = await client.get(f"/api/v1/outbox/{outbox_id}", headers=owner)
    assert reply.status_code == 200 and "alice@example.org" in reply.json()["recipients"]
    shown = reply.json()
    assert shown["to"] == ["alice@example.org"] and shown["subject"].startswith("Re: ")
    assert shown["text"].startswith("Thanks, we will get back to you."), "decoded, not the raw part"
    assert (await client.get(f"/api/v1/outbox/{outbox_id}", headers=other)).status_code == 404
