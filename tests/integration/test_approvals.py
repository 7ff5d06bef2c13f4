"""Gated replies wait for their owner: list, read, edit-and-approve, reject; tenants isolated."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import select, update

from mailhook.services import Services
from mailhook.store.accounts import Accounts
from mailhook.store.models import Mailbox, Reply, ReplyState, User
from tests.lmtp_client import lmtp_send, make_message
from tests.support import activity, outbox, text_of, wait_for_jobs

PASSWORD = "correct horse battery"


async def login(api: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def to_customer(services: Services) -> list[EmailMessage]:
    return [m for m in await outbox(services) if "alice@example.org" in str(m["To"])]


async def held_replies(services: Services, api: httpx.AsyncClient, count: int) -> dict[str, str]:
    async with services.sessions() as session, session.begin():
        await session.execute(update(Mailbox).values(mode="gated"))
    for n in range(count):
        data = make_message(subject=f"question {n}", body=f"Please help with order {n}")
        await asyncio.to_thread(
            lmtp_send, services.settings.lmtp.port, "alice@example.org", ["bot@agents.test"], data
        )
    await wait_for_jobs(services, count)
    return await login(api, "owner@example.com")


async def test_owner_reads_edits_and_approves(api: httpx.AsyncClient, services: Services) -> None:
    owner = await held_replies(services, api, 2)
    assert await to_customer(services) == [], "gated: nothing reaches the customer on its own"
    listing = sorted((await api.get("/api/v1/pending", headers=owner)).json(), key=lambda p: p["subject"])
    assert [p["subject"] for p in listing] == ["Re: question 0", "Re: question 1"]
    assert listing[0]["recipients"] == ["alice@example.org"] and listing[0]["reasons"] == ["gated mode"]
    assert "Thanks, we will get back to you." in listing[0]["text"]

    edited = await api.post(
        f"/api/v1/pending/{listing[0]['id']}/approve",
        json={"text": "Your order ships tomorrow."},
        headers=owner,
    )
    assert edited.status_code == 200 and edited.json() == {"result": "sent"}
    plain = await api.post(f"/api/v1/pending/{listing[1]['id']}/approve", headers=owner)
    assert plain.status_code == 200
    sent = await to_customer(services)
    assert len(sent) == 2
    bodies = [text_of(m) for m in sent]
    assert sum("Your order ships tomorrow." in b for b in bodies) == 1
    edited_body = next(b for b in bodies if "Your order ships tomorrow." in b)
    assert "To stop automatic replies" in edited_body, "an edit keeps the signature and unsubscribe footer"
    assert sent[0]["In-Reply-To"] is not None and sent[0]["Auto-Submitted"] == "auto-replied"
    again = await api.post(f"/api/v1/pending/{listing[0]['id']}/approve", headers=owner)
    assert again.status_code == 404, "a decided reply cannot be sent twice"
    actions = [r.action for r in await activity(services)]
    assert actions.count("approved") == 2 and actions.count("replied") == 2


async def test_reject_erases_and_other_owners_see_nothing(api: httpx.AsyncClient, services: Services) -> None:
    owner = await held_replies(services, api, 1)
    await Accounts(services.sessions).create_user("mallory@example.com", PASSWORD)
    mallory = await login(api, "mallory@example.com")
    [pending] = (await api.get("/api/v1/pending", headers=owner)).json()
    assert (await api.get("/api/v1/pending", headers=mallory)).json() == []
    for method, path in [
        ("GET", f"/api/v1/pending/{pending['id']}"),
        ("POST", f"/api/v1/pending/{pending['id']}/approve"),
        ("POST", f"/api/v1/pending/{pending['id']}/reject"),
    ]:
        assert (await api.request(method, path, headers=mallory)).status_code == 404
        assert (await api.request(method, path)).status_code == 401
    rejected = await api.post(f"/api/v1/pending/{pending['id']}/reject", headers=owner)
    assert rejected.status_code == 200
    async with services.sessions() as session:
        reply = await session.scalar(select(Reply).where(Reply.kind == "reply"))
    assert reply is not None and reply.state == ReplyState.REJECTED.value and reply.sealed_message is None
    assert await to_customer(services) == []


async def test_bad_approval_bodies(api: httpx.AsyncClient, services: Services) -> None:
    owner = await held_replies(services, api, 1)
    [pending] = (await api.get("/api/v1/pending", headers=owner)).json()
    url = f"/api/v1/pending/{pending['id']}/approve"
    for body in ({"text": ""}, {"text": "x" * 200_000}, {"text": 5}):
        assert (await api.post(url, json=body, headers=owner)).status_code == 400
    broken = await api.post(url, content=b"{nope", headers={**owner, "content-type": "application/json"})
    assert broken.status_code == 400
    assert (await api.get("/api/v1/pending/999999", headers=owner)).status_code == 404
    assert len((await api.get("/api/v1/pending", headers=owner)).json()) == 1, "still held after bad input"


async def answer(services: Services, sender: str, to: str, text: str) -> None:
    data = make_message(sender=sender, to=to, subject="Re: [mailhook] Approval needed", body=text)
    result = await asyncio.to_thread(lmtp_send, services.settings.lmtp.port, sender, [to], data)
    assert result.data[to].startswith("250")


async def test_approval_by_mail_needs_token_and_owner(api: httpx.AsyncClient, services: Services) -> None:
    await held_replies(services, api, 2)
    notices = [m for m in await outbox(services) if m["Subject"].startswith("[mailhook] Approval needed")]
    assert len(notices) == 2 and all(n["To"] == "owner@example.com" for n in notices)
    first, second = (str(n["Reply-To"]) for n in notices)
    assert first.startswith("bot+approve-") and first.endswith("@agents.test")
    assert "Thanks, we will get back to you." in notices[0].get_payload(decode=True).decode()

    forged = first.rsplit("-", 1)[0] + "-aaaaaaaaaaaaaaaa@agents.test"
    await answer(services, "owner@example.com", forged, "APPROVE")
    await answer(services, "alice@example.org", first, "approve")  # right token, not the owner
    await answer(services, "owner@example.com", first, "Hmm, let me think\n\n> APPROVE or REJECT")
    await wait_for_jobs(services, 5)
    assert await to_customer(services) == []

    await answer(services, "owner@example.com", first, "Yes, send it.\n\nOn Tue, mailhook wrote:\n> REJECT")
    await answer(services, "owner@example.com", second, "reject")
    await wait_for_jobs(services, 7)
    sent = await to_customer(services)
    assert len(sent) == 1, "exactly the approved reply went out"
    reasons = [r.reason for r in await activity(services) if r.action == "skipped"]
    assert "approval address with a bad signature" in reasons
    assert "approval answer not from the owner" in reasons
    assert "approval answer without approve or reject" in reasons
    assert "owner answered approve by mail" in reasons and "owner answered reject by mail" in reasons
    async with services.sessions() as session:
        states = sorted((await session.scalars(select(Reply.state).where(Reply.kind == "reply"))).all())
    assert states == ["rejected", "sent"]


@pytest.mark.parametrize("extra_env", [{"MAILHOOK_BILLING_ENFORCE_QUOTA": "true"}])
async def test_an_approved_reply_costs_one_credit(api: httpx.AsyncClient, services: Services) -> None:
    owner = await held_replies(services, api, 1)
    before = (await api.get("/api/v1/me", headers=owner)).json()
    [pending] = (await api.get("/api/v1/pending", headers=owner)).json()
    assert (await api.post(f"/api/v1/pending/{pending['id']}/approve", headers=owner)).status_code == 200
    after = (await api.get("/api/v1/me", headers=owner)).json()
    assert after["remaining_credits"] == before["remaining_credits"] - 1, "held mail is paid when sent"
    again = await api.post(f"/api/v1/pending/{pending['id']}/approve", headers=owner)
    assert again.status_code == 404
    assert (await api.get("/api/v1/me", headers=owner)).json() == after


def billing_notices(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if str(m["Subject"]).startswith("[mailhook] Out of credits")]


@pytest.mark.parametrize("extra_env", [{"MAILHOOK_BILLING_ENFORCE_QUOTA": "true"}])
async def test_approving_with_the_last_credit_pauses_and_notifies_once(
    api: httpx.AsyncClient, services: Services
) -> None:
    owner = await held_replies(services, api, 2)
    async with services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.email == "owner@example.com").values(credits_used=9))
    first, second = (await api.get("/api/v1/pending", headers=owner)).json()
    assert (await api.post(f"/api/v1/pending/{first['id']}/approve", headers=owner)).status_code == 200
    [notice] = billing_notices(await outbox(services))
    assert str(notice["To"]) == "owner@example.com"
    async with services.sessions() as session:
        assert await session.scalar(select(Mailbox.status)) == "pending_billing"
    # The other held reply may still be approved (it was written before the pause): charged, no
    # second notice.
    assert (await api.post(f"/api/v1/pending/{second['id']}/approve", headers=owner)).status_code == 200
    assert len(billing_notices(await outbox(services))) == 1
    assert len(await to_customer(services)) == 2
