"""A burst larger than one fan-out page is queued in full by one pass, on every node, exactly once,
whether its rows are still inside the grace window (cursor kept back) or already settled (cursor
moved past them). Pages are made tiny so twelve events span several. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select, update

from mailhook.services import Services
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Activity, Mailbox, User, WebhookDelivery, WebhookEndpoint, utcnow
from mailhook.webhooks.fanout import FanOut
from tests.fakes.webhook_receiver import WebhookReceiver

EVENTS = 12


async def two_endpoints_and_a_burst(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> list[int]:
    """Two endpoints of the owner, both for ``escalation``; twelve escalations and one non-event."""
    user, mailbox = owner_and_mailbox
    endpoints = [
        (await services.webhooks.endpoints.create(user, receiver.url, ["escalation"])).endpoint.id
        for _ in range(2)
    ]
    for n in range(EVENTS):
        await services.activity.record(mailbox.id, ActivityAction.ESCALATED, reason=f"event {n}")
    await services.activity.record(mailbox.id, ActivityAction.SKIPPED, reason="no event")
    return endpoints


async def queued(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


async def cursors(services: Services) -> set[int]:
    async with services.sessions() as session:
        return set((await session.scalars(select(WebhookEndpoint.cursor_activity_id))).all())


async def test_a_young_burst_beyond_one_page_is_queued_by_one_pass_on_two_nodes(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> None:
    await two_endpoints_and_a_burst(services, receiver, owner_and_mailbox)
    webhooks = services.webhooks
    nodes = [FanOut(webhooks.read_engine, services.sessions, page=5) for _ in range(2)]

    await asyncio.gather(*(node.scan() for node in nodes))
    assert await queued(services) == 2 * EVENTS, "every pair queued without waiting out the grace"
    await asyncio.gather(*(node.scan() for node in nodes))
    assert await queued(services) == 2 * EVENTS, "a second pass queues no duplicate"
    assert await cursors(services) == {0}, "young rows keep the cursors back"

    await webhooks.deliveries.send_due()
    assert len(receiver.received) == 2 * EVENTS
    assert len({r.headers["mailhook-delivery"] for r in receiver.received}) == 2 * EVENTS
    per_event = Counter(r.json["id"] for r in receiver.received)
    assert len(per_event) == EVENTS and set(per_event.values()) == {2}, "each event once per endpoint"


async def test_a_settled_burst_beyond_one_page_moves_the_cursors_past_it(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> None:
    await two_endpoints_and_a_burst(services, receiver, owner_and_mailbox)
    async with services.sessions() as session, session.begin():
        await session.execute(update(Activity).values(created_at=utcnow() - timedelta(minutes=1)))
        last = await session.scalar(select(func.max(Activity.id)))
    fanout = FanOut(services.webhooks.read_engine, services.sessions, page=5)

    assert await fanout.scan() == 2 * EVENTS
    assert await cursors(services) == {last}, "past every page and the trailing non-event"
    assert await FanOut(services.webhooks.read_engine, services.sessions, page=5).scan() == 0
    assert await queued(services) == 2 * EVENTS
