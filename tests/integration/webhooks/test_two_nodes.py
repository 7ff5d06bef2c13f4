"""Two nodes on one database: fan-out and sending run on both, yet every event reaches the
receiver exactly once (unique deliveries, leased claims). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from mailhook.services import Services
from mailhook.store.activity import ActivityAction
from mailhook.store.models import Mailbox, User, WebhookDelivery, WebhookEndpoint
from mailhook.webhooks.dispatcher import Deliveries
from mailhook.webhooks.fanout import FanOut
from tests.fakes.webhook_receiver import WebhookReceiver


async def test_two_nodes_deliver_each_event_once(
    services: Services, receiver: WebhookReceiver, owner_and_mailbox: tuple[User, Mailbox]
) -> None:
    user, mailbox = owner_and_mailbox
    webhooks = services.webhooks
    created = await webhooks.endpoints.create(user, receiver.url, ["escalation", "message.bounced"])
    for n in range(12):
        action = ActivityAction.ESCALATED if n % 2 else ActivityAction.BOUNCED
        await services.activity.record(mailbox.id, action, reason=f"event {n}")
    await services.activity.record(mailbox.id, ActivityAction.SKIPPED, reason="no event")

    settings = services.settings.webhooks
    nodes = [
        (
            FanOut(webhooks.read_engine, services.sessions),
            Deliveries(
                webhooks.read_engine, services.sessions, services.sealer, settings, webhooks.policy, name
            ),
        )
        for name in ("node-a", "node-b")
    ]
    for _ in range(2):  # a second pass re-reads rows inside the grace window: still no duplicates
        await asyncio.gather(*(fanout.scan() for fanout, _ in nodes))
    await asyncio.gather(*(deliveries.send_due() for _, deliveries in nodes))
    for _, deliveries in nodes:
        await deliveries.close()  # their kept-alive connections

    assert len(receiver.received) == 12
    assert len({r.json["id"] for r in receiver.received}) == 12, "each event once"
    assert {r.event for r in receiver.received} == {"escalation", "message.bounced"}
    async with services.sessions() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
        endpoint = await session.get(WebhookEndpoint, created.endpoint.id)
    assert len(rows) == 12 and {r.status for r in rows} == {"delivered"}
    assert {r.attempts for r in rows} == {1}
    assert endpoint is not None and endpoint.cursor_activity_id == 0, "young rows keep the cursor back"
