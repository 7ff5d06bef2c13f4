"""Billing: credits (charge, pause at zero, grant, resume) and the Stripe API over HTTP.

The real ``stripe`` library talks to a fake Stripe on loopback; webhook bodies are signed with
Stripe's real scheme. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mailhook.api.auth import issue_token
from mailhook.app import create_app
from mailhook.billing.credits import BillingEffect, Credits
from mailhook.billing.stripe_api import effect_for
from mailhook.errors import NotFound, ValidationFailed
from mailhook.services import Services
from mailhook.settings import BillingSettings
from mailhook.store.models import Mailbox, User, utcnow
from tests.fakes.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, event, sign
from tests.http import serve_http

ENFORCED = {"MAILHOOK_BILLING_ENFORCE_QUOTA": "true"}
WEBHOOK = "/api/v1/billing/webhook"
CHECKOUT = "/api/v1/billing/checkout"


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(
        prices={
            "price_sub": {
                "id": "price_sub",
                "object": "price",
                "unit_amount": 1900,
                "currency": "usd",
                "recurring": {"interval": "month"},
            },
            "price_pack": {
                "id": "price_pack",
                "object": "price",
                "unit_amount": 900,
                "currency": "usd",
                "recurring": None,
            },
        }
    ).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def extra_env(fake_stripe: FakeStripe) -> dict[str, str]:
    """Billing on, against the fake; tests that want it off parametrize ``extra_env``."""
    return {
        "MAILHOOK_BILLING_STRIPE_SECRET_KEY": API_KEY,
        "MAILHOOK_BILLING_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILHOOK_BILLING_STRIPE_API_BASE": fake_stripe.base_url,
        "MAILHOOK_BILLING_PRICE_SUBSCRIPTION": "price_sub",
        "MAILHOOK_BILLING_PRICE_CREDIT_PACK": "price_pack",
    }


@pytest.fixture
async def owner(services: Services) -> User:
    """A user with two active mailboxes and an inactive one (rows written directly: tests get
    their token from ``issue_token``, so no Argon2 hashing slows every test down)."""
    user = User(email="owner@example.com", password_hash="-")
    async with services.sessions() as session, session.begin():
        session.add(user)
        await session.flush()
        for handle, status in (("bot", "active"), ("sales", "active"), ("old", "inactive")):
            session.add(Mailbox(owner_id=user.id, address=f"{handle}@agents.test", status=status))
    return user


@pytest.fixture
async def client(services: Services, owner: User) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services, migrate=False)
    async with (
        serve_http(app, services.settings.http.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield http


async def _set_user(services: Services, user_id: int, **values: Any) -> None:
    async with services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(**values))


async def _user(services: Services, user_id: int) -> User:
    async with services.sessions() as session:
        found = await session.get(User, user_id)
    assert found is not None
    return found


async def _statuses(services: Services) -> dict[str, str]:
    async with services.sessions() as session:
        rows = (await session.execute(select(Mailbox.address, Mailbox.status))).all()
    return {address.split("@")[0]: status for address, status in rows}


def _auth(services: Services, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user.id, services.settings.security.jwt_secret)}"}


async def _deliver(client: httpx.AsyncClient, body: bytes, signature: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json", "stripe-signature": signature or sign(body)}
    return await client.post(WEBHOOK, content=body, headers=headers)


def _paid_pack(user_id: int, session_id: str = "cs_test_paid") -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "client_reference_id": str(user_id),
        "customer": "cus_owner",
        "metadata": {"user_id": str(user_id), "kind": "one_time"},
    }


def _invoice(user_id: int, invoice_id: str, *, new_api: bool = True) -> dict[str, Any]:
    details = {"subscription": "sub_1", "metadata": {"user_id": str(user_id), "kind": "subscription"}}
    shape = {"parent": {"type": "subscription_details", "subscription_details": details}}
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_owner",
        "status": "paid",
        **(shape if new_api else {"subscription": "sub_1", "subscription_details": details}),
    }


# --- credits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("extra_env", [ENFORCED])
async def test_remaining_formula_and_what_costs(services: Services, owner: User) -> None:
    """enforce_quota with no Stripe key counts credits; only replies, drafts and persona tests."""
    credits = Credits(services.sessions, services.settings)
    assert await credits.remaining(owner.id) == 10
    await _set_user(services, owner.id, purchased_credits=5, subscription_credits=7, credits_used=3)
    balance = await credits.balance(owner.id)
    assert balance.remaining == 19
    assert (balance.free, balance.purchased, balance.subscription, balance.used) == (10, 5, 7, 3)
    for action in ("skipped", "escalated", "no_action", "queued", "error", "REPLIED"):
        assert await credits.charge(owner.id, action) is False
    assert await credits.remaining(owner.id) == 19
    for action in ("replied", "drafted", "tested_persona"):
        assert await credits.charge(owner.id, action) is False
    assert await credits.remaining(owner.id) == 16
    assert await credits.charge(owner.id + 100, "replied") is False  # no such user
    with pytest.raises(NotFound):
        await credits.remaining(owner.id + 100)
    bad_grants = ((0, "admin", "x"), (5, "gift", "x"), (5, "admin", ""), (5, "admin", "s" * 256))
    for amount, kind, source in bad_grants:
        with pytest.raises(ValidationFailed):
            await credits.grant(owner.id, amount, kind, source)
    with pytest.raises(NotFound):
        await credits.grant(owner.id + 100, 5, "admin", "x")


@pytest.mark.parametrize("extra_env", [ENFORCED])
async def test_zero_pauses_mailboxes_notifies_once_and_grant_resumes(services: Services, owner: User) -> None:
    """enforce_quota with no Stripe key: the whole cycle works without billing."""
    credits = Credits(services.sessions, services.settings)
    await _set_user(services, owner.id, free_credits=2)
    assert await credits.charge(owner.id, "replied") is False
    assert await credits.charge(owner.id, "replied") is True
    assert await _statuses(services) == {
        "bot": "pending_billing",
        "sales": "pending_billing",
        "old": "inactive",
    }
    assert await credits.claim_billing_notice(owner.id) is True
    assert await credits.claim_billing_notice(owner.id) is False
    # A job that was in flight still replied: counted, without a second pause or notice.
    assert await credits.charge(owner.id, "drafted") is False
    assert (await _user(services, owner.id)).credits_used == 3
    assert await credits.remaining(owner.id) == 0

    assert await credits.grant(owner.id, 50, "admin", "admin:ticket-1") is True
    assert await credits.grant(owner.id, 50, "admin", "admin:ticket-1") is False
    assert await _statuses(services) == {"bot": "active", "sales": "active", "old": "inactive"}
    assert await credits.remaining(owner.id) == 49  # the overdraft of one is paid back first
    assert (await _user(services, owner.id)).billing_notice_sent_at is None
    assert await credits.claim_billing_notice(owner.id) is True  # re-armed for the next time


@pytest.mark.parametrize("extra_env", [ENFORCED])
async def test_subscription_keeps_mailboxes_running_at_zero(services: Services, owner: User) -> None:
    credits = Credits(services.sessions, services.settings)
    await _set_user(services, owner.id, free_credits=1)
    await credits.set_subscription(owner.id, "active")
    assert await credits.charge(owner.id, "replied") is False
    assert await credits.charge(owner.id, "replied") is False
    assert (await _statuses(services))["bot"] == "active"
    await credits.set_subscription(owner.id, "canceled")
    assert await credits.charge(owner.id, "replied") is True
    assert (await _statuses(services))["bot"] == "pending_billing"
    await credits.set_subscription(owner.id, "active")
    assert (await _statuses(services))["bot"] == "active"


@pytest.mark.parametrize("extra_env", [ENFORCED])
async def test_concurrent_charges_lose_no_update(services: Services, owner: User) -> None:
    credits = Credits(services.sessions, services.settings)
    results = await asyncio.gather(*(credits.charge(owner.id, "replied") for _ in range(14)))
    assert results.count(True) == 1  # one pause, whoever crossed zero
    assert (await _user(services, owner.id)).credits_used == 14
    assert await credits.remaining(owner.id) == 0
    grants = await asyncio.gather(
        *(credits.grant(owner.id, 100, "one_time", "same-source") for _ in range(5))
    )
    assert grants.count(True) == 1
    assert await credits.remaining(owner.id) == 96


@pytest.mark.parametrize("extra_env", [{}])
async def test_unlimited_when_quota_not_enforced(services: Services, owner: User) -> None:
    credits = Credits(services.sessions, services.settings)
    assert await credits.remaining(owner.id) is None
    for _ in range(12):
        assert await credits.charge(owner.id, "replied") is False
    assert (await _user(services, owner.id)).credits_used == 0
    assert (await _statuses(services))["bot"] == "active"


# --- pricing and checkout --------------------------------------------------------------------


@pytest.mark.parametrize("extra_env", [{}])
async def test_billing_off(client: httpx.AsyncClient, services: Services, owner: User) -> None:
    body = (await client.get("/api/v1/pricing")).json()
    assert body["billing_enabled"] is False and body["quota_enforced"] is False
    assert body["credit_pack"]["available"] is False and body["credit_pack"]["unit_amount"] is None
    response = await client.post(CHECKOUT, json={"kind": "one_time"}, headers=_auth(services, owner))
    assert response.status_code == 409
    assert response.json()["detail"] == "billing is not enabled"


async def test_pricing_is_public_and_checkout_is_not(
    client: httpx.AsyncClient, services: Services, fake_stripe: FakeStripe, owner: User
) -> None:
    body = (await client.get("/api/v1/pricing")).json()
    assert body["billing_enabled"] is True and body["quota_enforced"] is True
    assert body["free_credits"] == 10
    assert body["subscription"] == {
        "available": True,
        "credits": 1000,
        "unit_amount": 1900,
        "currency": "usd",
        "interval": "month",
    }
    assert body["credit_pack"]["credits"] == 500 and body["credit_pack"]["unit_amount"] == 900
    assert (await client.post(CHECKOUT, json={"kind": "one_time"})).status_code == 401
    auth = _auth(services, owner)
    assert (await client.post(CHECKOUT, json={"kind": "lifetime"}, headers=auth)).status_code == 400
    for bad in ("k" * 256, "tab\there"):
        headers = {**auth, "Idempotency-Key": bad}
        assert (await client.post(CHECKOUT, json={"kind": "one_time"}, headers=headers)).status_code == 400
    assert fake_stripe.checkout_requests() == []
    expected = {"one_time": ("payment", "price_pack"), "subscription": ("subscription", "price_sub")}
    for number, (kind, (mode, price)) in enumerate(expected.items(), start=1):
        response = await client.post(CHECKOUT, json={"kind": kind}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json() == {"url": f"https://checkout.stripe.test/c/pay/cs_test_{number}"}
        sent = fake_stripe.checkout_requests()[-1]
        assert sent.form["mode"] == mode
        assert sent.form["line_items[0][price]"] == price
        assert sent.form["client_reference_id"] == str(owner.id)
        assert sent.form["metadata[user_id]"] == str(owner.id) and sent.form["metadata[kind]"] == kind
        assert sent.form["customer_email"] == "owner@example.com"
        assert sent.form["success_url"].startswith(f"{services.settings.public_url}/billing?checkout=success")
        assert sent.headers["idempotency-key"].startswith(f"mailhook-checkout:{owner.id}:{kind}:")
    assert fake_stripe.checkout_requests()[-1].form["subscription_data[metadata][user_id]"] == str(owner.id)


async def test_double_click_makes_one_session(
    client: httpx.AsyncClient, services: Services, fake_stripe: FakeStripe, owner: User
) -> None:
    auth = _auth(services, owner)
    for _ in range(2):  # a second try only if the clicks straddled a minute (their keys differ)
        fake_stripe.requests.clear()
        clicks = await asyncio.gather(
            *(client.post(CHECKOUT, json={"kind": "one_time"}, headers=auth) for _ in range(2))
        )
        if len({r.headers["idempotency-key"] for r in fake_stripe.checkout_requests()}) == 1:
            break
    assert [c.status_code for c in clicks] == [200, 200]
    assert clicks[0].json() == clicks[1].json()
    assert len(fake_stripe.checkout_requests()) == 2
    sessions = len(fake_stripe.sessions)
    keyed = {**auth, "Idempotency-Key": "click-42"}
    first = await client.post(CHECKOUT, json={"kind": "subscription"}, headers=keyed)
    again = await client.post(CHECKOUT, json={"kind": "subscription"}, headers=keyed)
    other = await client.post(
        CHECKOUT, json={"kind": "subscription"}, headers={**auth, "Idempotency-Key": "43"}
    )
    assert first.json() == again.json() != other.json()
    assert len(fake_stripe.sessions) == sessions + 2


# --- webhook ---------------------------------------------------------------------------------


async def test_webhook_rejects_unsigned_and_acknowledges_unknown(
    client: httpx.AsyncClient, services: Services, owner: User
) -> None:
    body = event("checkout.session.completed", _paid_pack(owner.id), "evt_forged")
    unsigned = await client.post(WEBHOOK, content=body, headers={"content-type": "application/json"})
    forged = await _deliver(client, body, sign(body, secret="whsec_not_the_secret"))
    tampered = await _deliver(client, body.replace(b"paid", b"PAID"), sign(body))
    stale = await _deliver(client, body, sign(body, timestamp=int(utcnow().timestamp()) - 301))
    garbage = await _deliver(client, body, "t=abc,v1=00")
    for response in (unsigned, forged, tampered, stale, garbage):
        assert response.status_code == 400, response.text
    for bad in (b"{not json", b"[1, 2]", b'{"id": "evt_1", "type": "x"}', b"\xff\xfe"):
        assert (await _deliver(client, bad)).status_code == 400
    huge = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await _deliver(client, huge)).status_code == 413
    unknown = event("customer.created", {"id": "cus_x", "object": "customer"}, "evt_u1")
    assert (await _deliver(client, unknown)).json() == {"status": "ignored"}
    foreign = {**_paid_pack(owner.id), "metadata": {}, "client_reference_id": None}
    assert (await _deliver(client, event("checkout.session.completed", foreign, "evt_f1"))).json() == {
        "status": "ignored"
    }
    gone = _paid_pack(owner.id + 100, "cs_gone")
    assert (await _deliver(client, event("checkout.session.completed", gone, "evt_g1"))).status_code == 200
    assert (await _user(services, owner.id)).purchased_credits == 0


async def test_credit_pack_is_granted_exactly_once(
    client: httpx.AsyncClient, services: Services, owner: User
) -> None:
    body = event("checkout.session.completed", _paid_pack(owner.id), "evt_pack_1")
    first, second = await _deliver(client, body), await _deliver(client, body)
    assert (first.json(), second.json()) == ({"status": "processed"}, {"status": "duplicate"})
    same_session = event("checkout.session.async_payment_succeeded", _paid_pack(owner.id), "evt_pack_2")
    assert (await _deliver(client, same_session)).status_code == 200
    racing = event("checkout.session.completed", _paid_pack(owner.id, "cs_test_two"), "evt_pack_3")
    both = await asyncio.gather(*(_deliver(client, racing) for _ in range(3)))
    assert sorted(r.json()["status"] for r in both) == ["duplicate", "duplicate", "processed"]
    user = await _user(services, owner.id)
    assert (user.purchased_credits, user.stripe_customer_id) == (1000, "cus_owner")
    assert await Credits(services.sessions, services.settings).remaining(owner.id) == 1010


async def test_subscription_lifecycle(client: httpx.AsyncClient, services: Services, owner: User) -> None:
    credits = Credits(services.sessions, services.settings)
    await _set_user(services, owner.id, free_credits=1)
    assert await credits.charge(owner.id, "replied") is True  # paused before subscribing
    started = {
        "id": "cs_sub",
        "mode": "subscription",
        "payment_status": "paid",
        "customer": "cus_owner",
        "subscription": "sub_1",
        "metadata": {"user_id": str(owner.id), "kind": "subscription"},
    }
    assert (await _deliver(client, event("checkout.session.completed", started, "evt_s1"))).status_code == 200
    assert (await _user(services, owner.id)).subscription_status == "active"
    assert (await _statuses(services))["bot"] == "active"
    for number, new_api in ((1, True), (2, False)):
        paid = event("invoice.paid", _invoice(owner.id, f"in_{number}", new_api=new_api), f"evt_i{number}")
        assert (await _deliver(client, paid)).json() == {"status": "processed"}
        assert (await _deliver(client, paid)).json() == {"status": "duplicate"}
    assert (await _user(services, owner.id)).subscription_credits == 2000
    ended = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_owner",
        "status": "canceled",
        "metadata": {"user_id": str(owner.id)},
    }
    assert (
        await _deliver(client, event("customer.subscription.deleted", ended, "evt_d1"))
    ).status_code == 200
    assert (await _user(services, owner.id)).subscription_status == "canceled"


# --- event meaning (no I/O) ------------------------------------------------------------------


def test_effect_for_waits_for_settled_payments() -> None:
    billing = BillingSettings()
    unpaid = {**_paid_pack(7), "payment_status": "unpaid"}
    assert effect_for({"type": "checkout.session.completed", "data": {"object": unpaid}}, billing) is None
    paid = effect_for({"type": "checkout.session.completed", "data": {"object": _paid_pack(7)}}, billing)
    assert paid == BillingEffect(
        7, customer="cus_owner", grant=500, grant_kind="one_time", source="stripe:cs_test_paid"
    )
    one_off = {"id": "in_9", "customer": "cus_owner"}
    assert effect_for({"type": "invoice.paid", "data": {"object": one_off}}, billing) is None
