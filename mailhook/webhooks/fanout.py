"""Fan-out: new activity rows become ``webhook_deliveries`` rows, one per endpoint and event.

Every node runs it; that is safe because a delivery is unique per (endpoint, activity row,
event) and inserted with ``ON CONFLICT DO NOTHING``, and an endpoint's cursor only moves
forward with a conditional UPDATE. Nothing is kept in memory that a restart would lose.

Why the cursor trails by :data:`GRACE`: on PostgreSQL an activity id is drawn when the row is
inserted but becomes visible when its transaction commits, so id 11 can be seen before id 10.
Rows younger than the grace period are delivered at once but the cursor stays before them, so a
straggler still committing is read on a later pass (its delivery cannot duplicate: unique).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailhook.logs import get_logger
from mailhook.store.models import (
    Activity,
    Mailbox,
    OutgoingKind,
    Reply,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from mailhook.webhooks.db import insert_for, reading
from mailhook.webhooks.events import EVENT_FOR_ACTION, ActivityFacts, event_id, payload_for

log = get_logger(__name__)

GRACE = timedelta(seconds=10)
SCAN_LIMIT = 500
_MEMORY_LIMIT = 20_000


class FanOut:
    """Reads the activity log past each endpoint's cursor and queues deliveries."""

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._sessions = sessions
        # (endpoint, activity) pairs this process already queued: rows inside the grace window
        # are read again on every pass and need no second INSERT.
        self._queued: set[tuple[int, int]] = set()
        self._settled = 0

    async def scan(self) -> int:
        """One pass; returns how many deliveries it queued."""
        now = utcnow()
        async with reading(self._engine) as conn:
            rows = (await conn.execute(_new_activity())).all()
            replies = await _replies(conn, {r.job_id for r in rows if r.job_id is not None})
            settled = await conn.scalar(
                select(func.max(Activity.id)).where(Activity.created_at <= now - GRACE)
            )
        fresh = [r for r in rows if (r.endpoint_id, r.activity_id) not in self._queued]
        queued = await self._queue(fresh, replies)
        await self._advance(rows, now, truncated=len(rows) >= SCAN_LIMIT, settled=int(settled or 0))
        return queued

    async def _queue(self, rows: Sequence[Row[Any]], replies: dict[int, tuple[int, str, int]]) -> int:
        values = []
        for row in rows:
            event = EVENT_FOR_ACTION[row.action]
            if event not in (row.events or []):
                continue
            reply = replies.get(row.job_id) if row.job_id is not None else None
            facts = ActivityFacts(
                activity_id=row.activity_id,
                action=row.action,
                created_at=row.created_at,
                mailbox_id=row.mailbox_id,
                mailbox_address=row.address,
                job_id=row.job_id,
                detail=dict(row.detail or {}),
                reply_id=reply[0] if reply else None,
                reply_message_id=reply[1] if reply else None,
                reply_recipients=reply[2] if reply else None,
            )
            values.append(_delivery(row.endpoint_id, facts))
        if values:
            async with self._sessions() as session, session.begin():
                insert = insert_for(session)(WebhookDelivery).values(values).on_conflict_do_nothing()
                await session.execute(insert)
            log.info("webhook_events_queued", count=len(values))
        if len(self._queued) > _MEMORY_LIMIT:
            self._queued.clear()
        self._queued.update((row.endpoint_id, row.activity_id) for row in rows)
        return len(values)

    async def _advance(
        self, rows: Sequence[Row[Any]], now: datetime, *, truncated: bool, settled: int
    ) -> None:
        by_endpoint: dict[int, list[Row[Any]]] = defaultdict(list)
        for row in rows:
            by_endpoint[row.endpoint_id].append(row)
        moves: dict[int, int] = {}
        waiting: set[int] = set()
        for endpoint_id, own in by_endpoint.items():
            cursor = own[0].cursor
            for row in own:
                if row.created_at > now - GRACE:
                    waiting.add(endpoint_id)
                    break
                cursor = row.activity_id
            if cursor > own[0].cursor:
                moves[endpoint_id] = cursor
        # Endpoints with nothing waiting skip past rows that are no event of theirs, so the next
        # pass does not read them again (once per new settled id: idle passes write nothing).
        skip = not truncated and settled > self._settled
        if not moves and not skip:
            return
        async with self._sessions() as session, session.begin():
            for endpoint_id, cursor in moves.items():
                await session.execute(_move(cursor).where(WebhookEndpoint.id == endpoint_id))
            if skip:
                jump = _move(settled)
                if waiting:
                    jump = jump.where(WebhookEndpoint.id.not_in(waiting))
                await session.execute(jump)
        if skip and not waiting:
            self._settled = settled


def _move(cursor: int) -> Any:
    return (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.cursor_activity_id < cursor)
        .values(cursor_activity_id=cursor)
        .execution_options(synchronize_session=False)
    )


def _new_activity() -> Any:
    return (
        select(
            WebhookEndpoint.id.label("endpoint_id"),
            WebhookEndpoint.events,
            WebhookEndpoint.cursor_activity_id.label("cursor"),
            Activity.id.label("activity_id"),
            Activity.action,
            Activity.created_at,
            Activity.mailbox_id,
            Activity.job_id,
            Activity.detail,
            Mailbox.address,
        )
        .select_from(WebhookEndpoint)
        .join(Mailbox, Mailbox.owner_id == WebhookEndpoint.user_id)
        .join(
            Activity,
            and_(Activity.mailbox_id == Mailbox.id, Activity.id > WebhookEndpoint.cursor_activity_id),
        )
        .where(WebhookEndpoint.active.is_(True), Activity.action.in_(list(EVENT_FOR_ACTION)))
        .order_by(Activity.id, WebhookEndpoint.id)
        .limit(SCAN_LIMIT)
    )


async def _replies(conn: Any, job_ids: set[int]) -> dict[int, tuple[int, str, int]]:
    """job id → (reply id, Message-ID, recipient count) of each job's reply."""
    if not job_ids:
        return {}
    query = select(Reply.job_id, Reply.id, Reply.message_id, Reply.recipients).where(
        Reply.job_id.in_(job_ids), Reply.kind == OutgoingKind.REPLY.value
    )
    return {
        row.job_id: (row.id, row.message_id, len(row.recipients or []))
        for row in (await conn.execute(query)).all()
    }


def _delivery(endpoint_id: int, facts: ActivityFacts) -> dict[str, Any]:
    now = utcnow()
    payload = payload_for(facts)
    return {
        "endpoint_id": endpoint_id,
        "activity_id": facts.activity_id,
        "event": payload["type"],
        "event_id": event_id(facts.activity_id),
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }
