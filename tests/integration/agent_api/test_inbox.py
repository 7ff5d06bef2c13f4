"""``answered_by = api``: mail waits (sealed, sanitised) for the mailbox's own agent, which reads,
threads and answers it; the model is never called; tenants are isolated; items expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from mailhook.services import Services
from mailhook.store.models import AgentInboxItem, utcnow
from tests.fakes.llm import FakeLLM
from tests.integration.agent_api.conftest import MakeKey, bearer
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, outbox, text_of, token_users, wait_for_jobs

FIRST_ID = "<first-1234@example.org>"


async def deliver(services: Services, data: bytes) -> None:
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "alice@example.org", ["bot@agents.test"], data)


async def api_mailbox_with_mail(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], mailbox_id: int
) -> None:
    patched = await api.patch(f"/api/v1/mailboxes/{mailbox_id}", json={"answered_by": "api"}, headers=owner)
    assert patched.status_code == 200 and patched.json()["answered_by"] == "api"
    first = make_message(
        cc="bob@example.org",
        subject="Order #1234",
        body="Hello, where is my or\u200bd\u200ber #1234?\u2067 Thanks",
        message_id=FIRST_ID,
    )
    await deliver(services, first)
    await wait_for_jobs(services, 1)
    second = make_message(
        subject="Re: Order #1234",
        body="Any news?",
        extra_headers={"In-Reply-To": FIRST_ID, "References": FIRST_ID},
    )
    await deliver(services, second)
    await wait_for_jobs(services, 2)


async def test_agent_reads_threads_and_answers(
    api: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    owner: dict[str, str],
    mailbox_id: int,
    make_key: MakeKey,
) -> None:
    await api_mailbox_with_mail(api, services, owner, mailbox_id)
    assert fake_llm.requests == [], "the built-in model is not called for api mailboxes"
    assert [a.action for a in await activity(services)] == ["handed_to_agent", "handed_to_agent"]
    async with services.sessions() as session:
        items = (await session.scalars(select(AgentInboxItem))).all()
    assert all(b"where is my" not in i.sealed and b"alice" not in i.sealed for i in items), "sealed at rest"

    key = bearer(await make_key(trust="autonomous"))
    inbox = (await api.get("/api/v1/agent/inbox", headers=key)).json()
    assert [m["subject"] for m in inbox] == ["Re: Order #1234", "Order #1234"]
    assert inbox[1]["from_addr"] == "alice@example.org" and inbox[1]["answered"] is False
    first_id = inbox[1]["id"]

    message = (await api.get(f"/api/v1/agent/messages/{first_id}", headers=key)).json()
    assert message["text"].startswith("Hello, where is my order #1234?"), "the guard's sanitised text"
    assert "\u200b" not in message["text"] and "\u2067" not in message["text"]
    assert message["threat_score"] > 0 and message["threat_rules"] == ["invisible.bidi"]
    assert message["message_id"] == FIRST_ID and message["cc"] == ["bob@example.org"]

    thread = (await api.get(f"/api/v1/agent/messages/{inbox[0]['id']}/thread", headers=key)).json()
    assert [m["subject"] for m in thread] == ["Order #1234", "Re: Order #1234"]

    reply = await api.post(
        f"/api/v1/agent/messages/{first_id}/reply",
        json={"text": "It ships today.", "reply_all": True},
        headers=key,
    )
    assert reply.status_code == 200 and reply.json()["status"] == "sent", reply.text
    [sent] = await outbox(services)
    assert sent["To"] == "alice@example.org" and sent["Cc"] == "bob@example.org", "recipients computed"
    assert sent["In-Reply-To"] == FIRST_ID and FIRST_ID in sent["References"]
    assert sent["Subject"] == "Re: Order #1234" and sent["Auto-Submitted"] == "auto-replied"
    assert "It ships today." in text_of(sent)
    assert (await api.get("/api/v1/agent/inbox", headers=key)).json()[1]["answered"] is True

    draft = await api.post(f"/api/v1/agent/messages/{first_id}/draft", json={"text": "Draft."}, headers=key)
    assert draft.json()["status"] == "held"
    [pending] = (await api.get("/api/v1/pending", headers=owner)).json()
    assert pending["id"] == draft.json()["id"] and pending["recipients"] == ["alice@example.org"]
    assert len(await outbox(services)) == 1, "a draft is not sent"

    audit = (await api.get(f"/api/v1/mailboxes/{mailbox_id}/audit", headers=owner)).json()["items"]
    assert [e["action"] for e in audit][:3] == ["draft_reply", "check_inbox", "reply_email"]
    assert all("alice" not in str(e) and "ships" not in str(e) for e in audit), "no content in the trail"


async def test_tenant_isolation_and_expiry(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], mailbox_id: int, make_key: MakeKey
) -> None:
    await api_mailbox_with_mail(api, services, owner, mailbox_id)
    own = bearer(await make_key(scope="owner"))
    [first, _] = (await api.get("/api/v1/agent/inbox", headers=own)).json()
    held = (
        await api.post(f"/api/v1/agent/messages/{first['id']}/draft", json={"text": "x"}, headers=own)
    ).json()

    [(_, mallory)] = await token_users(services, "mallory@example.com")
    created = await api.post("/api/v1/mailboxes", json={"kind": "hosted", "handle": "other"}, headers=mallory)
    other = bearer(await make_key(scope="owner", mailbox=created.json()["id"], headers=mallory))
    assert (await api.get("/api/v1/agent/inbox", headers=other)).json() == []
    assert (await api.get("/api/v1/agent/pending", headers=other)).json() == []
    for method, path, body in (
        ("GET", f"/api/v1/agent/messages/{first['id']}", None),
        ("GET", f"/api/v1/agent/messages/{first['id']}/thread", None),
        ("POST", f"/api/v1/agent/messages/{first['id']}/reply", {"text": "hi"}),
        ("POST", f"/api/v1/agent/messages/{first['id']}/draft", {"text": "hi"}),
        ("POST", f"/api/v1/agent/pending/{held['id']}/decide", {"decision": "approve"}),
        ("GET", "/api/v1/agent/messages/2147483648", None),
    ):
        response = await api.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (path, response.text)

    async with services.sessions() as session, session.begin():
        await session.execute(update(AgentInboxItem).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await api.get(f"/api/v1/agent/messages/{first['id']}", headers=own)).status_code == 404
    assert await services.agent.inbox.purge_expired() == 2
    async with services.sessions() as session:
        assert (await session.scalars(select(AgentInboxItem))).all() == []


async def test_deleting_the_mailbox_purges_its_agent_inbox(
    api: httpx.AsyncClient, services: Services, owner: dict[str, str], mailbox_id: int, make_key: MakeKey
) -> None:
    await api_mailbox_with_mail(api, services, owner, mailbox_id)
    key = bearer(await make_key())
    assert (await api.delete(f"/api/v1/mailboxes/{mailbox_id}", headers=owner)).status_code == 204
    async with services.sessions() as session:
        assert (await session.scalars(select(AgentInboxItem))).all() == []
    assert (await api.get("/api/v1/agent/inbox", headers=key)).status_code == 401, "keys die with the mailbox"
    bad = await api.patch(f"/api/v1/mailboxes/{mailbox_id}", json={"answered_by": "robot"}, headers=owner)
    assert bad.status_code in (400, 409)
