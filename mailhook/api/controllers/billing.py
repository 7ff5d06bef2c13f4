"""Billing API: public pricing, Stripe Checkout for the signed-in user, and the Stripe webhook.

Billing is optional: with no ``billing.stripe_secret_key`` checkout answers 409 and pricing says
so. The webhook trusts nothing but Stripe's signature, and applies each event once
(``Credits.record_event``). See docs/billing.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from mailhook.api.auth import current_user
from mailhook.billing.credits import Credits
from mailhook.billing.stripe_api import CheckoutKind, StripeGateway, effect_for
from mailhook.errors import Conflict, ValidationFailed
from mailhook.logs import get_logger
from mailhook.services import Services
from mailhook.store.models import User, utcnow

log = get_logger(__name__)

#: Stripe events are a few KiB; anything near this is not from Stripe.
WEBHOOK_MAX_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY = 255


@dataclass
class Offer:
    """One thing to buy. ``unit_amount`` (minor units) is None when Stripe could not say."""

    available: bool
    credits: int
    unit_amount: int | None = None
    currency: str | None = None
    interval: str | None = None


@dataclass
class Pricing:
    """What credits cost, and whether they are counted at all."""

    billing_enabled: bool
    quota_enforced: bool
    free_credits: int
    subscription: Offer
    credit_pack: Offer


@dataclass
class CheckoutRequest:
    """What to buy: a monthly ``subscription`` or a ``one_time`` credit pack."""

    kind: CheckoutKind


@dataclass
class CheckoutResponse:
    """Where to send the browser."""

    url: str


async def _offer(gateway: StripeGateway, price_id: str, credits: int, *, enabled: bool) -> Offer:
    offer = Offer(available=enabled and bool(price_id), credits=credits)
    info = await gateway.price(price_id) if offer.available else None
    if info is not None:
        offer.unit_amount, offer.currency, offer.interval = info.unit_amount, info.currency, info.interval
    return offer


def idempotency_key(user_id: int, kind: str, header: str | None, now: datetime) -> str:
    """The Stripe idempotency key of a checkout click.

    A client's ``Idempotency-Key`` is hashed and scoped to the user and kind, so one user's key
    can never return another user's session; without one, clicks in the same minute share a key.
    """
    if header is None:
        return f"mailhook-checkout:{user_id}:{kind}:m{now:%Y%m%d%H%M}"
    if not 0 < len(header) <= MAX_IDEMPOTENCY_KEY or not (header.isascii() and header.isprintable()):
        raise ValidationFailed(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
    return f"mailhook-checkout:{user_id}:{kind}:k{hashlib.sha256(header.encode()).hexdigest()}"


class BillingController(Controller):
    """``/api/v1/pricing``, ``/api/v1/billing/checkout`` and ``/api/v1/billing/webhook``."""

    path = "/api/v1"
    dependencies = {"user": Provide(current_user)}

    @get("/pricing")
    async def pricing(self, state: State) -> Pricing:
        """Public: the offers, their credits and (from Stripe, cached) their prices."""
        settings = state.services.settings
        billing, enabled = settings.billing, settings.billing_enabled
        async with StripeGateway(settings) as gateway:
            subscription = await _offer(
                gateway, billing.price_subscription, billing.credits_per_period, enabled=enabled
            )
            pack = await _offer(gateway, billing.price_credit_pack, billing.credits_per_pack, enabled=enabled)
        return Pricing(
            billing_enabled=enabled,
            quota_enforced=settings.quota_enforced,
            free_credits=billing.free_credits,
            subscription=subscription,
            credit_pack=pack,
        )

    @post("/billing/checkout", status_code=200)
    async def checkout(
        self,
        request: Request[Any, Any, State],
        user: NamedDependency[User],
        data: JSONBody[CheckoutRequest],
    ) -> CheckoutResponse:
        """A Stripe Checkout URL; a repeated click (same key) gets the same session back."""
        services: Services = request.app.state.services
        if not services.settings.billing_enabled:
            raise Conflict("billing is not enabled")
        key = idempotency_key(user.id, data.kind, request.headers.get("idempotency-key"), utcnow())
        async with StripeGateway(services.settings) as gateway:
            url = await gateway.create_checkout(user, data.kind, key)
        return CheckoutResponse(url=url)

    @post("/billing/webhook", status_code=200, request_max_body_size=WEBHOOK_MAX_BYTES)
    async def webhook(self, request: Request[Any, Any, State]) -> dict[str, str]:
        """Stripe events: verified, then applied exactly once. Unknown types are acknowledged."""
        services: Services = request.app.state.services
        payload = await request.body()
        gateway = StripeGateway(services.settings)  # verification opens no connection
        event = gateway.verify_event(payload, request.headers.get("stripe-signature", ""))
        effect = effect_for(event, services.settings.billing)
        credits = Credits(services.sessions, services.settings)
        applied = await credits.record_event(event["id"], event["type"], effect)
        outcome = "duplicate" if not applied else "processed" if effect is not None else "ignored"
        log.info("stripe_event", type=event["type"][:100], outcome=outcome)
        return {"status": outcome}
