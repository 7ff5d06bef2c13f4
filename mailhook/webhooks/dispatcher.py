"""Sends queued deliveries: claim, sign, POST, then done, retry later, or give up.

Claims are safe with several nodes: PostgreSQL hands each due row to one node
(``FOR UPDATE SKIP LOCKED``, as the spool does) and SQLite serialises writers. A claim is a
lease; a node that dies mid-request leaves a lease that expires, and another node sends again,
which is why every request carries ``Mailhook-Delivery`` for the receiver to deduplicate.
A ``2xx`` answer is success; anything else (status, timeout, refused address) is retried with
exponential backoff and jitter, up to ``webhooks.max_attempts``, then the delivery is ``failed``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.backoff import jittered
from mailhook.crypto import Sealer
from mailhook.errors import ValidationFailed
from mailhook.logs import get_logger
from mailhook.settings import WebhookSettings
from mailhook.store.models import WebhookDelivery, WebhookEndpoint, utcnow
from mailhook.webhooks.db import reading
from mailhook.webhooks.events import PING, ping_payload
from mailhook.webhooks.sender import Sender, SendFailed
from mailhook.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header
from mailhook.webhooks.urls import UrlPolicy

log = get_logger(__name__)

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
CLAIM_BATCH = 20


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes sent and signed (compact, stable key order)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class Deliveries:
    """Claims and sends ``webhook_deliveries`` rows for one node."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        settings: WebhookSettings,
        policy: UrlPolicy,
        node: str,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._sealer = sealer
        self._settings = settings
        self._policy = policy
        self._sender = Sender(settings.timeout_seconds)
        self.node = node

    async def queue_ping(self, endpoint_id: int) -> int:
        """A ``ping`` delivery for the endpoint; returns its id."""
        now = utcnow()
        row = WebhookDelivery(
            endpoint_id=endpoint_id,
            activity_id=None,
            event=PING,
            payload=ping_payload(endpoint_id, now),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error="",
        )
        row.event_id = str(row.payload["id"])
        async with self._sessions() as session, session.begin():
            session.add(row)
        return row.id

    async def send_due(self) -> int:
        """Claim and send every due delivery (a batch at a time); returns how many were tried."""
        tried = 0
        while ids := await self._claim():
            await asyncio.gather(*(self._attempt(i) for i in ids))
            tried += len(ids)
        return tried

    async def send_now(self, delivery_id: int) -> WebhookDelivery | None:
        """Send one delivery at once if it is still pending (the test route); its row after."""
        if await self._claim_one(delivery_id):
            await self._attempt(delivery_id)
        async with self._sessions() as session:
            return await session.get(WebhookDelivery, delivery_id)

    async def close(self) -> None:
        """Close the kept-alive connections (when webhooks stop)."""
        await self._sender.close()

    async def prune(self) -> None:
        """Forget finished deliveries older than ``retention_days``."""
        cutoff = utcnow() - timedelta(days=self._settings.retention_days)
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status.in_((DELIVERED, FAILED)), WebhookDelivery.created_at < cutoff
                )
            )

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now),
            and_(WebhookDelivery.status == SENDING, WebhookDelivery.lease_until < now),
        )

    async def _claim(self) -> list[int]:
        now = utcnow()
        async with reading(self._engine) as conn:
            # A read first: an idle node never takes the (SQLite) write lock.
            if await conn.scalar(select(WebhookDelivery.id).where(self._due(now)).limit(1)) is None:
                return []
        async with self._sessions() as session, session.begin():
            query = (
                select(WebhookDelivery.id)
                .where(self._due(now))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(CLAIM_BATCH)
                .with_for_update(skip_locked=True)
            )
            ids = list((await session.scalars(query)).all())
            if ids:
                await session.execute(self._lease().where(WebhookDelivery.id.in_(ids)))
        return ids

    async def _claim_one(self, delivery_id: int) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                self._lease().where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
            )
        return bool(getattr(result, "rowcount", 0))

    def _lease(self) -> Update:
        until = utcnow() + timedelta(seconds=self._settings.timeout_seconds + 30)
        return (
            update(WebhookDelivery)
            .values(
                status=SENDING,
                lease_owner=self.node,
                lease_until=until,
                attempts=WebhookDelivery.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )

    async def _attempt(self, delivery_id: int) -> None:
        async with self._sessions() as session:
            row = await session.get(WebhookDelivery, delivery_id)
            endpoint = await session.get(WebhookEndpoint, row.endpoint_id) if row else None
        if row is None or endpoint is None or row.lease_owner != self.node:
            return
        status: int | None = None
        try:
            target = await self._policy.target(endpoint.url)
            secret = self._sealer.open(endpoint.secret_sealed).decode()
            body = body_of(row.payload)
            headers = {
                SIGNATURE_HEADER: signature_header(secret, body),
                EVENT_HEADER: row.event,
                DELIVERY_HEADER: f"dlv_{row.id}",
            }
            status = await self._sender.post(target, body, headers)
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except (SendFailed, ValidationFailed) as exc:
            error = str(exc)
        except Exception as exc:  # e.g. a secret sealed with a retired key: count it, never loop
            log.warning("webhook_attempt_error", delivery=row.id, error=type(exc).__name__)
            error = f"internal error ({type(exc).__name__})"
        await self._finish(row, status, error)

    async def _finish(self, row: WebhookDelivery, status: int | None, error: str) -> None:
        now = utcnow()
        values: dict[str, object] = {
            "last_status_code": status,
            "last_error": error[:200],
            "lease_owner": None,
            "lease_until": None,
        }
        if not error:
            values |= {"status": DELIVERED, "delivered_at": now}
        elif row.attempts >= self._settings.max_attempts:
            values |= {"status": FAILED}
        else:
            values |= {"status": PENDING, "next_attempt_at": now + self._backoff(row.attempts)}
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row.id,
                    WebhookDelivery.status == SENDING,
                    WebhookDelivery.lease_owner == self.node,
                )
                .values(**values)
            )
        log.info("webhook_attempt", delivery=row.id, kind=row.event, status=status, outcome=values["status"])

    def _backoff(self, attempts: int) -> timedelta:
        base = self._settings.backoff_seconds * 2 ** max(0, attempts - 1)
        delay = min(base, self._settings.backoff_max_seconds)
        # Jitter on the upper half keeps a recovered receiver from being hit by every node at once.
        return timedelta(seconds=jittered(delay))
