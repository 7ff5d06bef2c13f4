"""Credits: what a user may still spend, charging for work done, grants, and pausing at zero.

``remaining = free + purchased + subscription - used`` (the four ``users`` columns). Only the
actions in :data:`COSTING_ACTIONS` cost a credit. When a charge leaves a user with nothing and
no active subscription, every ``active`` mailbox of theirs moves to ``pending_billing`` and the
caller sends the owner one notice (:meth:`Credits.claim_billing_notice` makes it one); a grant
or an active subscription moves them back. See docs/billing.md.

Every change is one transaction of SQL-side arithmetic (``credits_used = credits_used + 1``), so
concurrent workers on several nodes never lose an update, on PostgreSQL (row locks) as on SQLite
(``BEGIN IMMEDIATE`` serialises writers, see ``store/db.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.errors import NotFound, ValidationFailed
from mailhook.logs import get_logger
from mailhook.settings import Settings
from mailhook.store.models import CreditGrant, Mailbox, MailboxStatus, StripeEvent, User, utcnow

log = get_logger(__name__)

#: Activity actions that cost one credit; everything else (skipped, escalated, ...) is free.
COSTING_ACTIONS = frozenset({"replied", "drafted", "tested_persona"})
#: Stripe subscription statuses under which mailboxes keep working at zero credits.
ACTIVE_SUBSCRIPTION = frozenset({"active", "trialing"})

KIND_ONE_TIME = "one_time"
KIND_SUBSCRIPTION = "subscription"
KIND_ADMIN = "admin"
GRANT_KINDS = frozenset({KIND_ONE_TIME, KIND_SUBSCRIPTION, KIND_ADMIN})

_PAUSE_REASON = "no credits left: buy credits or subscribe to resume"


def _remaining_expr() -> ColumnElement[int]:
    return User.free_credits + User.purchased_credits + User.subscription_credits - User.credits_used


@dataclass(frozen=True)
class Balance:
    """A user's credits as ``GET /me`` shows them. ``remaining`` is None when unlimited."""

    remaining: int | None
    free: int
    purchased: int
    subscription: int
    used: int
    subscription_status: str


@dataclass(frozen=True)
class BillingEffect:
    """What one Stripe event does to one user (built by ``stripe_api.effect_for``).

    The user is ``user_id`` (from our checkout metadata) or else the one whose
    ``stripe_customer_id`` is ``customer``. ``grant`` credits of ``grant_kind`` are added once
    per ``source``; ``subscription`` (when set) becomes the user's subscription status.
    """

    user_id: int | None
    customer: str = ""
    grant: int = 0
    grant_kind: str = KIND_ONE_TIME
    source: str = ""
    subscription: str | None = None


class Credits:
    """The credit ledger of every user."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._enforced = settings.quota_enforced

    async def remaining(self, user_id: int) -> int | None:
        """Credits left (never below 0), or None when quotas are not enforced (unlimited)."""
        return (await self.balance(user_id)).remaining

    async def balance(self, user_id: int) -> Balance:
        """The whole picture for one user; :class:`NotFound` if there is no such user."""
        async with self._sessions() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        left = user.free_credits + user.purchased_credits + user.subscription_credits - user.credits_used
        return Balance(
            remaining=max(0, left) if self._enforced else None,
            free=user.free_credits,
            purchased=user.purchased_credits,
            subscription=user.subscription_credits,
            used=user.credits_used,
            subscription_status=user.subscription_status,
        )

    async def charge(self, user_id: int, action: str) -> bool:
        """Count one credit for a costing ``action``; True when this charge paused the mailboxes.

        The work was already done (the reply is sent) when this is called, so a charge at zero
        is still counted: ``credits_used`` may pass the total by the few jobs that were in
        flight when the credits ran out, and the next grant pays that back first. When quotas
        are not enforced nothing is counted (switching enforcement on later must not pause
        everyone at once). On True, call :meth:`claim_billing_notice` and send the owner notice.
        """
        if action not in COSTING_ACTIONS or not self._enforced:
            return False
        # One UPDATE: the increment happens in SQL under the row lock, and RETURNING gives the
        # balance this very charge left, so two concurrent charges can never both read "1 left".
        charged = (
            update(User)
            .where(User.id == user_id)
            .values(credits_used=User.credits_used + 1)
            .returning(_remaining_expr(), User.subscription_status)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            row = (await session.execute(charged)).first()
            if row is None:
                return False
            left, subscription = int(row[0]), str(row[1])
            if left > 0 or subscription in ACTIVE_SUBSCRIPTION:
                return False
            paused = await _move_mailboxes(
                session, user_id, MailboxStatus.ACTIVE, MailboxStatus.PENDING_BILLING
            )
        if paused:
            log.info("billing_paused", user_id=user_id, mailboxes=paused)
        return paused > 0

    async def claim_billing_notice(self, user_id: int) -> bool:
        """True exactly once per pause: the caller that gets True sends the owner notice.

        ``billing_notice_sent_at`` is set only where it is NULL, in one UPDATE, so concurrent
        workers cannot both send; a grant clears it for the next time credits run out.
        """
        claim = (
            update(User)
            .where(User.id == user_id, User.billing_notice_sent_at.is_(None))
            .values(billing_notice_sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            return _rowcount(await session.execute(claim)) == 1

    async def grant(self, user_id: int, amount: int, kind: str, source: str) -> bool:
        """Add credits once per ``source``; False when that source was already granted.

        In the same transaction the pause notice is re-armed and ``pending_billing`` mailboxes
        resume when the balance is positive again.
        """
        _check_grant(amount, kind, source)
        async with self._sessions() as session, session.begin():
            if await session.get(User, user_id) is None:
                raise NotFound("no such user")
            return await _grant(session, user_id, amount, kind, source)

    async def set_subscription(self, user_id: int, status: str) -> None:
        """Record the Stripe subscription status; an active one resumes paused mailboxes.

        A subscription ending does not pause anything by itself: the next charge at zero does,
        through :meth:`charge`, so the owner notice has one sender.
        """
        async with self._sessions() as session, session.begin():
            if await session.get(User, user_id) is None:
                raise NotFound("no such user")
            await _set_subscription(session, user_id, status)

    async def record_event(self, event_id: str, event_type: str, effect: BillingEffect | None) -> bool:
        """Apply a Stripe event exactly once; False when it was already applied.

        The ``stripe_events`` row and the effect commit together: a failure leaves neither, so
        Stripe's retry applies it, and a second (or concurrent) delivery hits the primary key.
        """
        try:
            async with self._sessions() as session, session.begin():
                session.add(StripeEvent(id=event_id[:255], type=event_type[:100]))
                await session.flush()
                if effect is not None:
                    await _apply(session, effect)
        except IntegrityError:
            return False
        return True


def _rowcount(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)


def _check_grant(amount: int, kind: str, source: str) -> None:
    if amount <= 0:
        raise ValidationFailed("a grant must be a positive number of credits")
    if kind not in GRANT_KINDS:
        raise ValidationFailed(f"grant kind must be one of {', '.join(sorted(GRANT_KINDS))}")
    if not source or len(source) > 255:
        raise ValidationFailed("a grant needs a source of 1 to 255 characters")


async def _move_mailboxes(session: AsyncSession, user_id: int, old: MailboxStatus, new: MailboxStatus) -> int:
    """Move the user's mailboxes in state ``old`` to ``new``; returns how many moved.

    The status guard makes it idempotent: of two concurrent pauses only the first moves rows.
    """
    reason = _PAUSE_REASON if new is MailboxStatus.PENDING_BILLING else ""
    moved = (
        update(Mailbox)
        .where(Mailbox.owner_id == user_id, Mailbox.status == old.value)
        .values(status=new.value, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(moved))


async def _resume(session: AsyncSession, user_id: int) -> None:
    """Re-arm the notice and wake ``pending_billing`` mailboxes when the user may spend again."""
    row = (
        await session.execute(select(_remaining_expr(), User.subscription_status).where(User.id == user_id))
    ).first()
    if row is None or (int(row[0]) <= 0 and str(row[1]) not in ACTIVE_SUBSCRIPTION):
        return
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(billing_notice_sent_at=None)
        .execution_options(synchronize_session=False)
    )
    resumed = await _move_mailboxes(session, user_id, MailboxStatus.PENDING_BILLING, MailboxStatus.ACTIVE)
    if resumed:
        log.info("billing_resumed", user_id=user_id, mailboxes=resumed)


async def _grant(session: AsyncSession, user_id: int, amount: int, kind: str, source: str) -> bool:
    # A savepoint, so a duplicate source undoes only this grant and not the caller's
    # transaction (a webhook records its event in the same one).
    try:
        async with session.begin_nested():
            session.add(CreditGrant(user_id=user_id, source=source, kind=kind, amount=amount))
            await session.flush()
    except IntegrityError:
        return False
    column = User.subscription_credits if kind == KIND_SUBSCRIPTION else User.purchased_credits
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values({column: column + amount})
        .execution_options(synchronize_session=False)
    )
    log.info("credits_granted", user_id=user_id, amount=amount, kind=kind)
    await _resume(session, user_id)
    return True


async def _set_subscription(session: AsyncSession, user_id: int, status: str) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(subscription_status=status[:32])
        .execution_options(synchronize_session=False)
    )
    log.info("subscription_status", user_id=user_id, status=status[:32])
    await _resume(session, user_id)


async def _find_user(session: AsyncSession, effect: BillingEffect) -> int | None:
    """The user an event is about, by our metadata, else by Stripe customer id."""
    if effect.user_id is not None:
        return effect.user_id if await session.get(User, effect.user_id) is not None else None
    if not effect.customer:
        return None
    # Our checkouts put the user id on the session and the subscription, so this fallback only
    # serves subscriptions made outside mailhook for a customer it already knows.
    return await session.scalar(select(User.id).where(User.stripe_customer_id == effect.customer))


async def _apply(session: AsyncSession, effect: BillingEffect) -> None:
    user_id = await _find_user(session, effect)
    if user_id is None:
        log.warning("billing_event_unknown_user", user_id=effect.user_id)
        return
    if effect.customer:
        await session.execute(
            update(User)
            .where(User.id == user_id, User.stripe_customer_id == "")
            .values(stripe_customer_id=effect.customer[:255])
            .execution_options(synchronize_session=False)
        )
    if effect.subscription is not None:
        await _set_subscription(session, user_id, effect.subscription)
    if effect.grant > 0:
        _check_grant(effect.grant, effect.grant_kind, effect.source)
        await _grant(session, user_id, effect.grant, effect.grant_kind, effect.source)
