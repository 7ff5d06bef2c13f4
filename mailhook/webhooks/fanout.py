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

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
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

    def __init__(
        self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], page: int = SCAN_LIMIT
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._page = page
        # (endpoint, activity) pairs this process already queued: rows inside the grace window
        # are read again on every pass and need no second INSERT.
        self._queued: set[tuple[int, int]] = set()
        self._settled = 0

    async def scan(self) -> int:
        """One pass over everything past the cursors, a page at a time; how many it queued.

        Pages follow each other by (activity, endpoint) key, not by the stored cursors: those
        stay behind rows younger than :data:`GRACE`, so a burst larger than a page would
        otherwise have its first page read again on every pass until it aged out.
        """
        now = utcnow()
        progress = _Progress(now)
        queued, after = 0, (0, 0)
        async with reading(self._engine) as conn:
            settled = await conn.scalar(
                select(func.max(Activity.id)).where(Activity.created_at <= now - GRACE)
            )
        while True:
            async with reading(self._engine) as conn:  # not held while the page is written
                rows = (await conn.execute(_new_activity(after, self._page))).all()
                replies = await _replies(conn, {r.job_id for r in rows if r.job_id is not None})
            fresh = [r for r in rows if (r.endpoint_id, r.activity_id) not in self._queued]
            queued += await self._queue(fresh, replies)
            progress.add(rows)
            if len(rows) < self._page:
                break
            after = (rows[-1].activity_id, rows[-1].endpoint_id)
        await self._advance(progress, settled=int(settled or 0))
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

    async def _advance(self, progress: _Progress, *, settled: int) -> None:
        moves = progress.moves()
        # Endpoints with nothing waiting skip past rows that are no event of theirs, so the next
        # pass does not read them again (once per new settled id: idle passes write nothing).
        # The pass read every row past the cursors, so nothing before ``settled`` is unseen.
        skip = settled > self._settled
        if not moves and not skip:
            return
        async with self._sessions() as session, session.begin():
            for endpoint_id, cursor in moves.items():
                await session.execute(_move(cursor).where(WebhookEndpoint.id == endpoint_id))
            if skip:
                jump = _move(settled)
                if progress.waiting:
                    jump = jump.where(WebhookEndpoint.id.not_in(progress.waiting))
                await session.execute(jump)
        if skip and not progress.waiting:
            self._settled = settled


class _Progress:
    """How far each endpoint's cursor may move: up to its first row still inside the grace."""

    def __init__(self, now: datetime) -> None:
        self._young = now - GRACE
        self._start: dict[int, int] = {}
        self._cursor: dict[int, int] = {}
        self.waiting: set[int] = set()

    def add(self, rows: Sequence[Row[Any]]) -> None:
        """The next rows of the pass, in (activity, endpoint) order."""
        for row in rows:
            endpoint_id = row.endpoint_id
            self._start.setdefault(endpoint_id, row.cursor)
            if endpoint_id in self.waiting:
                continue
            if row.created_at > self._young:
                self.waiting.add(endpoint_id)
            else:
                self._cursor[endpoint_id] = row.activity_id

    def moves(self) -> dict[int, int]:
        """endpoint id → the cursor it may move to, for those that move."""
        return {e: c for e, c in self._cursor.items() if c > self._start[e]}


def _move(cursor: int) -> Any:
    return (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.cursor_activity_id < cursor)
        .values(cursor_activity_id=cursor)
        .execution_options(synchronize_session=False)
    )


def _new_activity(after: tuple[int, int], limit: int) -> Any:
    """The next ``limit`` (endpoint, activity) pairs past the cursors and past ``after``."""
    activity_id, endpoint_id = after
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
        .where(
            WebhookEndpoint.active.is_(True),
            Activity.action.in_(list(EVENT_FOR_ACTION)),
            or_(
                Activity.id > activity_id,
                and_(Activity.id == activity_id, WebhookEndpoint.id > endpoint_id),
            ),
        )
        .order_by(Activity.id, WebhookEndpoint.id)
        .limit(limit)
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
