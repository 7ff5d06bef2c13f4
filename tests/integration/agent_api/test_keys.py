"""Agent API keys: shown once, stored hashed, revocable; only keys open the agent routes."""

from __future__ import annotations

import hashlib
import re

import httpx
from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.models import AgentKey
from tests.integration.agent_api.conftest import MakeKey, bearer
from tests.support import token_users


async def test_key_lifecycle(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], mailbox_id: int, make_key: MakeKey
) -> None:
    live = await make_key(trust="gated", scope="owner", name="support bot")
    test = await make_key(test=True)
    assert re.fullmatch(r"mh_live_[A-Za-z0-9_-]{43}", live) and re.fullmatch(
        r"mh_test_[A-Za-z0-9_-]{43}", test
    )

    listing = (await api.get(f"/api/v1/mailboxes/{mailbox_id}/keys", headers=owner)).json()
    assert [k["name"] for k in listing] == ["support bot", "autonomous-agent"]
    assert (
        listing[0]["prefix"] == live[:14]
        and listing[0]["trust"] == "gated"
        and listing[0]["scope"] == "owner"
    )
    assert all("key" not in k and "secret_hash" not in k for k in listing), "the key is shown once only"
    async with services.sessions() as session:
        rows = (await session.scalars(select(AgentKey))).all()
    assert {r.secret_hash for r in rows} == {hashlib.sha256(k.encode()).hexdigest() for k in (live, test)}
    assert all(live[8:] not in (r.lookup + r.secret_hash) for r in rows), "only a hash and a lookup prefix"

    assert (await api.get("/api/v1/agent/inbox", headers=bearer(live))).status_code == 200
    revoked = await api.delete(f"/api/v1/mailboxes/{mailbox_id}/keys/{listing[0]['id']}", headers=owner)
    assert revoked.status_code == 204
    assert (await api.get("/api/v1/agent/inbox", headers=bearer(live))).status_code == 401
    assert (await api.get("/api/v1/agent/inbox", headers=bearer(test))).status_code == 200

    audit = (await api.get(f"/api/v1/mailboxes/{mailbox_id}/audit", headers=owner)).json()
    assert [(e["action"], e["outcome"], e["channel"]) for e in audit["items"]] == [
        ("check_inbox", "ok", "rest"),
        ("check_inbox", "ok", "rest"),
    ]
    assert audit["total"] == 2 and audit["items"][1]["key_name"] == "support bot"


async def test_only_valid_keys_open_agent_routes(
    api: httpx.AsyncClient, owner: dict[str, str], make_key: MakeKey
) -> None:
    key = await make_key()
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    as_test = "mh_test_" + key[8:]
    for headers in (
        {},
        owner,  # a user's JWT is not an agent key
        bearer(wrong_secret),
        bearer(as_test),
        bearer("mh_live_short"),
        bearer("mh_live_" + "x" * 5000),
        {"Authorization": f"Basic {key}"},
    ):
        for method, path in (("GET", "/api/v1/agent/inbox"), ("GET", "/api/v1/agent/pending")):
            response = await api.request(method, path, headers=headers)
            assert response.status_code == 401, (headers, response.text)
    sent = await api.post(
        "/api/v1/agent/send", json={"to": ["a@example.org"], "subject": "s", "text": "t"}, headers=owner
    )
    assert sent.status_code == 401


async def test_owner_routes_are_tenant_isolated(
    api: httpx.AsyncClient, services: Services, mailbox_id: int, make_key: MakeKey
) -> None:
    await make_key()
    [(_, mallory)] = await token_users(services, "mallory@example.com")
    base = f"/api/v1/mailboxes/{mailbox_id}"
    assert (await api.get(f"{base}/keys", headers=mallory)).status_code == 404
    assert (await api.get(f"{base}/audit", headers=mallory)).status_code == 404
    assert (await api.delete(f"{base}/keys/1", headers=mallory)).status_code == 404
    created = await api.post(f"{base}/keys", json={"name": "x"}, headers=mallory)
    assert created.status_code == 404
    assert (await api.get("/api/v1/mailboxes/2147483648/keys", headers=mallory)).status_code == 404


async def test_key_creation_refuses_bad_input(
    api: httpx.AsyncClient, owner: dict[str, str], mailbox_id: int
) -> None:
    path = f"/api/v1/mailboxes/{mailbox_id}/keys"
    for body in (
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "trust": "yolo"},
        {"name": "ok", "scope": "admin"},
        {"name": "ok", "test": "maybe"},
        {"name": "ok", "extra": 1},
        {"name": "bad\x00name"},
    ):
        response = await api.post(path, json=body, headers=owner)
        assert response.status_code == 400, body
    assert (await api.get(f"/api/v1/mailboxes/{mailbox_id}/audit?page=0", headers=owner)).status_code == 400
