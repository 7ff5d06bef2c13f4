"""``/api/v1/webhooks``: a user's signed webhook endpoints (docs/webhooks.md).

Owners only; another user's endpoint id is a 404. The signing secret is in the ``201`` answer
of the registration and nowhere else, ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from mailhook.api.auth import current_user
from mailhook.errors import NotFound
from mailhook.services import Services
from mailhook.store.models import User, WebhookDelivery, WebhookEndpoint
from mailhook.webhooks.service import Webhooks

MAX_BODY_BYTES = 16 * 1024
MAX_EVENTS = 16


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /webhooks``."""

    url: str
    events: list[str]


@dataclass
class WebhookOut:
    """An endpoint as listed (no secret)."""

    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


@dataclass
class WebhookCreated(WebhookOut):
    """The registration answer: the only time the signing secret is shown."""

    secret: str


@dataclass
class DeliveryOut:
    """One delivery attempt record: metadata, never the payload."""

    id: int
    event: str
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


def _out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(row.id, row.url, list(row.events), row.active, row.created_at)


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    """The public view of a delivery row."""
    waiting = row.status in ("pending", "sending")
    return DeliveryOut(
        id=row.id,
        event=row.event,
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if waiting else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def provide_webhooks(state: State) -> Webhooks:
    """Dependency: the app's webhook service."""
    services: Services = state.services
    return services.webhooks


class WebhookController(Controller):
    """Register, list, delete and test webhook endpoints; list their deliveries."""

    path = "/api/v1/webhooks"
    dependencies = {
        "user": Provide(current_user),
        "webhooks": Provide(provide_webhooks, sync_to_thread=False),
    }
    request_max_body_size = MAX_BODY_BYTES

    @post(status_code=201)
    async def create(
        self, user: NamedDependency[User], webhooks: NamedDependency[Webhooks], data: JSONBody[WebhookCreate]
    ) -> WebhookCreated:
        """Register ``url`` for ``events``; answers the signing secret once."""
        created = await webhooks.endpoints.create(user, data.url, data.events[:MAX_EVENTS])
        row = created.endpoint
        return WebhookCreated(row.id, row.url, list(row.events), row.active, row.created_at, created.secret)

    @get()
    async def list_webhooks(
        self, user: NamedDependency[User], webhooks: NamedDependency[Webhooks]
    ) -> list[WebhookOut]:
        """The caller's endpoints, oldest first."""
        return [_out(row) for row in await webhooks.endpoints.list_for(user)]

    @delete("/{webhook_id:int}", status_code=204)
    async def delete_webhook(
        self, user: NamedDependency[User], webhooks: NamedDependency[Webhooks], webhook_id: FromPath[int]
    ) -> None:
        """Remove the endpoint; its pending deliveries are dropped."""
        await webhooks.endpoints.delete(user, webhook_id)

    @post("/{webhook_id:int}/test", status_code=200)
    async def test(
        self, user: NamedDependency[User], webhooks: NamedDependency[Webhooks], webhook_id: FromPath[int]
    ) -> DeliveryOut:
        """Send a ``ping`` now; answers how that attempt went (retried later like any event)."""
        row = await webhooks.endpoints.get_for(user, webhook_id)
        delivery_id = await webhooks.deliveries.queue_ping(row.id)
        sent = await webhooks.deliveries.send_now(delivery_id)
        if sent is None:  # the endpoint was deleted meanwhile (its deliveries went with it)
            raise NotFound("no such webhook")
        return delivery_out(sent)

    @get("/{webhook_id:int}/deliveries")
    async def deliveries(
        self, user: NamedDependency[User], webhooks: NamedDependency[Webhooks], webhook_id: FromPath[int]
    ) -> list[DeliveryOut]:
        """The endpoint's last 100 deliveries, newest first."""
        return [delivery_out(row) for row in await webhooks.endpoints.deliveries(user, webhook_id)]
