"""Accounts: register, /me, login rate limiting, and GDPR erasure that leaves nothing behind."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from sqlalchemy import inspect, text

from mailhook.services import Services
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

PASSWORD = "correct horse battery"


async def register(api: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_register_and_me(api: httpx.AsyncClient) -> None:
    auth = await register(api, "New.User@Example.com")
    me = (await api.get("/api/v1/me", headers=auth)).json()
    assert me["email"] == "new.user@example.com"
    assert me["plan"] == "free"
    assert me["remaining_credits"] is None, "no billing, no enforced quota: unlimited"
    again = await api.post(
        "/api/v1/auth/register", json={"email": "new.user@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert (await api.get("/api/v1/me")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com", "password": "short"},
        {"email": "not an email", "password": PASSWORD},
        {"email": "x@example.com"},
        {"email": 5, "password": PASSWORD},
        {"email": "x@example.com", "password": "p" * 5000},
        "a string",
    ],
)
async def test_register_rejects_bad_input(api: httpx.AsyncClient, body: object) -> None:
    response = await api.post("/api/v1/auth/register", json=body)
    assert response.status_code == 400
    assert "detail" in response.json()


async def test_login_is_rate_limited(api: httpx.AsyncClient) -> None:
    for _ in range(5):
        wrong = await api.post(
            "/api/v1/auth/login", json={"email": "owner@example.com", "password": "nope nope nope"}
        )
        assert wrong.status_code == 401
    blocked = await api.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
    assert blocked.status_code == 429, "even the right password waits once the limit is hit"
    other = await api.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert other.status_code == 401, "the limit is per account"


async def test_erase_me_leaves_nothing(api: httpx.AsyncClient, services: Services) -> None:
    login = await api.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    await api.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": "wrong password"})
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message())
    await wait_for_jobs(services, 1)
    persona_dir = services.settings.data_dir / "personas" / "1"
    persona_dir.mkdir(parents=True)
    (persona_dir / "persona.md").write_text("I am the owner's agent")
    refused = await api.request("DELETE", "/api/v1/me", json={"password": "not my password"}, headers=auth)
    assert refused.status_code == 401
    erased = await api.request("DELETE", "/api/v1/me", json={"password": PASSWORD}, headers=auth)
    assert erased.status_code == 200 and erased.json() == {"erased_mailboxes": 1}
    assert (await api.get("/api/v1/me", headers=auth)).status_code == 401

    async with services.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        leftovers = {}
        for table in tables:
            if table == "alembic_version":
                continue
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            if table == "login_attempts":
                # Per-client counters (hashed address of the caller) are not the user's data.
                rows = [r for r in rows if r[1] == hashlib.sha256(b"email:owner@example.com").hexdigest()]
            if rows:
                leftovers[table] = [tuple(map(str, r)) for r in rows]
    assert leftovers == {}, f"rows left after erasure: {leftovers}"
    assert not persona_dir.exists()
    # Every file under the data dir, the SQLite database and its WAL included.
    for path in [*services.settings.data_dir.rglob("*"), *services.settings.data_dir.parent.glob("*.db*")]:
        if path.is_file():
            data = path.read_bytes()
            assert b"owner@example.com" not in data, path
            assert b"bot@agents.test" not in data, path
