"""A user's webhook endpoints: register (secret shown once, kept sealed), list, delete, and
the recent delivery attempts of one. Another user's endpoint is a 404, like a missing one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.errors import Conflict, NotFound, ValidationFailed
from mailhook.settings import WebhookSettings
from mailhook.store.models import Activity, User, WebhookDelivery, WebhookEndpoint, require_id
from mailhook.webhooks.events import EVENTS
from mailhook.webhooks.signing import new_secret
from mailhook.webhooks.urls import UrlPolicy

MAX_DELIVERIES_LISTED = 100


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """A registered endpoint and its signing secret (the only time the secret is readable)."""

    endpoint: WebhookEndpoint
    secret: str


def checked_events(events: Sequence[str]) -> list[str]:
    """The subscribed events, deduplicated, in the canonical order; 400 for anything unknown."""
    if not events:
        raise ValidationFailed(f"events: name at least one of {', '.join(EVENTS)}")
    unknown = sorted({e for e in events if e not in EVENTS})
    if unknown:
        raise ValidationFailed(f"events: unknown {', '.join(unknown)[:200]} (known: {', '.join(EVENTS)})")
    return [e for e in EVENTS if e in events]


class WebhookEndpoints:
    """CRUD over ``webhook_endpoints`` for their owners."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        settings: WebhookSettings,
        policy: UrlPolicy,
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._settings = settings
        self._policy = policy

    async def create(self, user: User, url: str, events: Sequence[str]) -> NewEndpoint:
        """Register ``url`` for ``events`` after vetting where it leads (400 if refused)."""
        subscribed = checked_events(events)
        await self._policy.target(url)
        secret = new_secret()
        async with self._sessions() as session, session.begin():
            count = await session.scalar(
                select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id)
            )
            if int(count or 0) >= self._settings.max_endpoints_per_user:
                raise Conflict(f"at most {self._settings.max_endpoints_per_user} webhook endpoints per user")
            # Events start now: the fan-out reads the activity log from the current end on.
            latest = await session.scalar(select(func.max(Activity.id)))
            row = WebhookEndpoint(
                user_id=user.id,
                url=url,
                events=subscribed,
                secret_sealed=self._sealer.seal(secret.encode()),
                active=True,
                cursor_activity_id=int(latest or 0),
            )
            session.add(row)
        return NewEndpoint(row, secret)

    async def list_for(self, user: User) -> list[WebhookEndpoint]:
        """The user's endpoints, oldest first."""
        async with self._sessions() as session:
            query = (
                select(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id).order_by(WebhookEndpoint.id)
            )
            return list((await session.scalars(query)).all())

    async def get_for(self, user: User, endpoint_id: int) -> WebhookEndpoint:
        """One of the user's endpoints; anyone else's is :class:`NotFound`."""
        async with self._sessions() as session:
            row = await session.get(WebhookEndpoint, require_id(endpoint_id, "webhook"))
        if row is None or row.user_id != user.id:
            raise NotFound("no such webhook")
        return row

    async def delete(self, user: User, endpoint_id: int) -> None:
        """Remove the endpoint and its deliveries (pending ones are never sent)."""
        row = await self.get_for(user, endpoint_id)
        async with self._sessions() as session, session.begin():
            await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == row.id))

    async def deliveries(self, user: User, endpoint_id: int) -> list[WebhookDelivery]:
        """The endpoint's most recent deliveries, newest first."""
        row = await self.get_for(user, endpoint_id)
        async with self._sessions() as session:
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == row.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(MAX_DELIVERIES_LISTED)
            )
            return list((await session.scalars(query)).all())

    def secret_of(self, row: WebhookEndpoint) -> str:
        """The signing secret (for the dispatcher only)."""
        return self._sealer.open(row.secret_sealed).decode()
