"""Kept-alive connections: deliveries to one receiver reuse a connection, but a connection made for
one host name (and vetted address) never carries a request for another. Names are resolved by a
stub resolver (no network); the receiver on 127.0.0.1 counts its connections."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from mailhook.services import Services
from mailhook.settings import WebhookSettings
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Mailbox, User, WebhookDelivery
from mailhook.webhooks.sender import Sender, SendFailed
from mailhook.webhooks.urls import UrlPolicy
from tests.fakes.webhook_receiver import WebhookReceiver


async def closed(receiver: WebhookReceiver) -> None:
    """Wait until the client has closed every connection to ``receiver``."""
    async with asyncio.timeout(10):
        while receiver.open_connections:
            await asyncio.sleep(0.01)


async def test_deliveries_to_one_receiver_reuse_one_connection(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> None:
    user, mailbox = owner_and_mailbox
    webhooks = services.webhooks
    created = await webhooks.endpoints.create(user, receiver.url, ["escalation"])

    async def burst(size: int) -> None:
        for n in range(size):
            await services.activity.record(mailbox.id, ActivityAction.ESCALATED, reason=f"event {n}")
        await webhooks.run_once()

    # Each burst is sent concurrently: at most one connection per request in flight. The second
    # may open a few more than the first did, if the first needed fewer, but never one per request.
    await burst(5)
    await burst(5)
    assert len(receiver.received) == 10 and 1 <= receiver.connections <= 5
    opened = receiver.connections
    ping = await webhooks.deliveries.queue_ping(created.endpoint.id)
    sent = await webhooks.deliveries.send_now(ping)

    assert sent is not None and sent.status == "delivered"
    assert [r.event for r in receiver.received] == ["escalation"] * 10 + ["ping"]
    assert receiver.connections == opened, "a later delivery opens no new connection"
    assert receiver.received[-1].connection in range(1, opened + 1)
    await webhooks.deliveries.close()
    await closed(receiver)


def policy(answers: dict[str, str]) -> UrlPolicy:
    """http allowed for the two test names; each resolves to what ``answers`` says now."""

    async def resolver(host: str, port: int) -> list[str]:
        return [answers[host]]

    settings = WebhookSettings(allow_http=True, allow_hosts="a.example, b.example")  # type: ignore[call-arg]
    return UrlPolicy(settings, resolver)


async def test_host_names_on_one_address_never_share_a_connection(receiver: WebhookReceiver) -> None:
    port = httpx.URL(receiver.url).port
    answers = {"a.example": "127.0.0.1", "b.example": "127.0.0.1"}
    urls = policy(answers)
    sender = Sender(5)
    try:
        for name in ["a.example", "b.example", "a.example", "b.example"]:
            target = await urls.target(f"http://{name}:{port}/hook")
            assert await sender.post(target, b"{}", {}) == 200
        by_host: dict[str, set[int]] = {}
        for request in receiver.received:
            by_host.setdefault(request.headers["host"], set()).add(request.connection)
        assert by_host == {f"a.example:{port}": {1}, f"b.example:{port}": {2}}

        # A new DNS answer is a new address: the pooled connection to the old one is not used
        # (nothing listens on 127.0.0.2, so the request fails rather than reach 127.0.0.1).
        answers["a.example"] = "127.0.0.2"
        with pytest.raises(SendFailed, match="cannot connect"):
            await sender.post(await urls.target(f"http://a.example:{port}/hook"), b"{}", {})
        assert len(receiver.received) == 4
    finally:
        await sender.close()
    await closed(receiver)


async def test_the_least_recently_used_client_is_closed(receiver: WebhookReceiver) -> None:
    port = httpx.URL(receiver.url).port
    urls = policy({"a.example": "127.0.0.1", "b.example": "127.0.0.1"})
    sender = Sender(5, max_clients=1)
    try:
        for name in ["a.example", "b.example", "a.example"]:
            assert await sender.post(await urls.target(f"http://{name}:{port}/hook"), b"{}", {}) == 200
        assert sender.clients == 1
        assert [r.connection for r in receiver.received] == [1, 2, 3]
        async with asyncio.timeout(10):
            while receiver.open_connections > 1:  # the evicted clients closed theirs
                await asyncio.sleep(0.01)
    finally:
        await sender.close()
    await closed(receiver)


async def test_a_request_fails_cleanly_when_the_receiver_closed_the_connection(
    receiver: WebhookReceiver,
) -> None:
    port = httpx.URL(receiver.url).port
    urls = policy({"a.example": "127.0.0.1", "b.example": "127.0.0.1"})
    sender = Sender(5)
    try:
        target = await urls.target(f"http://a.example:{port}/hook")
        assert await sender.post(target, b"{}", {}) == 200
        receiver.hang_up()  # the receiver drops the idle kept-alive connection
        await closed(receiver)
        assert await sender.post(target, b"{}", {}) == 200, "a fresh connection replaces it"
        assert [r.connection for r in receiver.received] == [1, 2]
    finally:
        await sender.close()


async def test_stopping_closes_connections_and_a_later_send_opens_one(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> None:
    user, _ = owner_and_mailbox
    deliveries = services.webhooks.deliveries
    created = await services.webhooks.endpoints.create(user, receiver.url, ["escalation"])
    for _ in range(2):
        sent = await deliveries.send_now(await deliveries.queue_ping(created.endpoint.id))
        assert sent is not None and sent.status == "delivered"
        await deliveries.close()
        await closed(receiver)
    assert [r.connection for r in receiver.received] == [1, 2]
    async with services.sessions() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert {r.status for r in rows} == {"delivered"}
