"""The Stripe boundary: Checkout Sessions, price look-ups, webhook verification, event meaning.

Uses the official ``stripe`` library (its async API over httpx) against
``billing.stripe_api_base``, so tests point it at a fake Stripe on loopback and the real request
encoding, idempotency headers and signature check are what run. :func:`effect_for` turns a
verified event into a :class:`~mailhook.billing.credits.BillingEffect`; it does no I/O.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import stripe

from mailhook.billing.credits import KIND_ONE_TIME, KIND_SUBSCRIPTION, BillingEffect
from mailhook.errors import ConfigError, Conflict, TemporaryFailure, ValidationFailed
from mailhook.logs import get_logger
from mailhook.settings import BillingSettings, Settings
from mailhook.store.models import User

log = get_logger(__name__)

CheckoutKind = Literal["subscription", "one_time"]

#: Checkout waits on Stripe while a person watches; retries reuse the idempotency key.
CHECKOUT_TIMEOUT_SECONDS = 20.0
#: ``GET /pricing`` is public: a slow Stripe must not hold it for long, nor be asked often.
PRICE_TIMEOUT_SECONDS = 5.0
PRICE_CACHE_SECONDS = 600.0
#: A checkout payment counts once it is settled; others wait for ``async_payment_succeeded``.
_SETTLED = frozenset({"paid", "no_payment_required"})


@dataclass(frozen=True)
class PriceInfo:
    """What a Stripe Price costs, for the pricing page (``unit_amount`` in minor units)."""

    unit_amount: int | None
    currency: str
    interval: str | None


_price_cache: dict[tuple[str, str], tuple[float, PriceInfo | None]] = {}


class _StripeHttp(stripe.HTTPClient):
    """The stripe library's transport over our httpx, async only.

    stripe's bundled ``HTTPXClient`` uploads its form with ``data=<str>``, which httpx
    deprecates (a warning per request); this sends it as ``content``. Retries, idempotency
    headers and error parsing stay the library's.
    """

    name = "mailhook-httpx"

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._http = httpx.AsyncClient(timeout=timeout)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._http.request(method, url, headers=headers, content=post_data)
        except httpx.HTTPError as exc:
            # Retryable, like stripe's own clients: a retry reuses the idempotency key.
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # untyped in stripe
                f"could not reach Stripe ({type(exc).__name__})", should_retry=True
            ) from None
        return response.content, response.status_code, response.headers

    async def sleep_async(self, secs: float) -> None:
        await asyncio.sleep(secs)

    async def close_async(self) -> None:
        await self._http.aclose()


class StripeGateway:
    """Talks to Stripe for one request; ``async with`` closes its HTTP client."""

    def __init__(self, settings: Settings) -> None:
        self._billing = settings.billing
        self._public_url = settings.public_url.rstrip("/")
        self._http: _StripeHttp | None = None
        self._client: stripe.StripeClient | None = None

    async def __aenter__(self) -> StripeGateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, if one was opened."""
        if self._http is not None:
            await self._http.close_async()
            self._http = None
            self._client = None

    def _stripe(self, timeout: float) -> stripe.StripeClient:
        # Built on first use: verifying a webhook needs no HTTP client at all.
        if self._client is None:
            self._http = _StripeHttp(timeout)
            self._client = stripe.StripeClient(
                self._billing.stripe_secret_key,
                base_addresses={"api": self._billing.stripe_api_base},
                http_client=self._http,
                max_network_retries=2,
            )
        return self._client

    async def create_checkout(self, user: User, kind: CheckoutKind, idempotency_key: str) -> str:
        """A Stripe Checkout URL for ``kind``; the same key returns the same session (Stripe
        keeps idempotency keys for 24 hours), so a double click cannot charge twice."""
        params = checkout_params(user, kind, self._billing, self._public_url)
        client = self._stripe(CHECKOUT_TIMEOUT_SECONDS)
        try:
            session = await client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]  # a plain dict of the documented fields
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from None
        if not session.url:
            raise ConfigError("Stripe returned a checkout session without a URL")
        log.info("checkout_created", user_id=user.id, kind=kind)
        return str(session.url)

    async def price(self, price_id: str) -> PriceInfo | None:
        """The amount of a Price, cached for a while; None if Stripe cannot tell us now."""
        if not price_id or not self._billing.stripe_secret_key:
            return None
        key = (self._billing.stripe_api_base, price_id)
        cached = _price_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            found = await self._stripe(PRICE_TIMEOUT_SECONDS).v1.prices.retrieve_async(
                price_id, options={"max_network_retries": 0}
            )
            info: PriceInfo | None = PriceInfo(
                unit_amount=found.unit_amount,
                currency=str(found.currency),
                interval=found.recurring.interval if found.recurring else None,
            )
        except stripe.StripeError as exc:
            log.warning("stripe_price_unavailable", error=type(exc).__name__)
            info = None
        _price_cache[key] = (time.monotonic() + PRICE_CACHE_SECONDS, info)
        return info

    def verify_event(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """The event in a webhook body signed by Stripe; :class:`ValidationFailed` (400) for an
        unsigned, forged or stale one, or one that is not an event object."""
        secret = self._billing.stripe_webhook_secret
        if not secret:
            raise Conflict("the Stripe webhook is not configured")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, secret, self._billing.webhook_tolerance_seconds
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            raise ValidationFailed("invalid, missing or expired Stripe-Signature") from None
        return parse_event(payload)


def checkout_params(
    user: User, kind: CheckoutKind, billing: BillingSettings, public_url: str
) -> dict[str, Any]:
    """The Checkout Session request for ``kind`` (a subscription, or a one-time credit pack)."""
    price = billing.price_subscription if kind == KIND_SUBSCRIPTION else billing.price_credit_pack
    if not price:
        raise Conflict(f"no Stripe price is configured for {kind.replace('_', '-')} purchases")
    metadata = {"user_id": str(user.id), "kind": kind}
    params: dict[str, Any] = {
        "mode": "subscription" if kind == KIND_SUBSCRIPTION else "payment",
        "line_items": [{"price": price, "quantity": 1}],
        "client_reference_id": str(user.id),
        "metadata": metadata,
        # {CHECKOUT_SESSION_ID} is filled in by Stripe, not by us.
        "success_url": f"{public_url}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{public_url}/billing?checkout=canceled",
    }
    if kind == KIND_SUBSCRIPTION:
        # Copied onto the subscription and its invoices, so invoice.paid names the user even
        # when it arrives before checkout.session.completed (Stripe does not order events).
        params["subscription_data"] = {"metadata": metadata}
    if user.stripe_customer_id:
        params["customer"] = user.stripe_customer_id
    else:
        params["customer_email"] = user.email
        if kind == KIND_ONE_TIME:
            params["customer_creation"] = "always"
    return params


def _translate(exc: stripe.StripeError) -> Exception:
    """Stripe failures as mailhook errors; Stripe's own message never reaches the client."""
    log.warning("stripe_error", error=type(exc).__name__, code=exc.code or "", status=exc.http_status or 0)
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict("this checkout was just started with other details; try again in a minute")
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return TemporaryFailure("the payment provider is unavailable; try again later")
    return ConfigError("the payment provider refused the request; check the billing settings")


def parse_event(payload: bytes) -> dict[str, Any]:
    """A Stripe event from verified bytes: an object with ``id``, ``type`` and ``data.object``."""
    try:
        event = json.loads(payload)
    except ValueError:
        raise ValidationFailed("the webhook body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise ValidationFailed("the webhook body is not a Stripe event")
    return event


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` or None: webhook objects are untrusted and vary by API version."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _user_id(*candidates: Any) -> int | None:
    """The first candidate that is a user id we wrote (metadata or client_reference_id)."""
    for value in candidates:
        if isinstance(value, str) and value.isdigit() and len(value) < 19:
            return int(value)
    return None


def effect_for(event: dict[str, Any], billing: BillingSettings) -> BillingEffect | None:
    """What a verified event does; None for events mailhook does not act on."""
    kind, obj = event["type"], event["data"]["object"]
    if kind in {"checkout.session.completed", "checkout.session.async_payment_succeeded"}:
        return _checkout_effect(obj, billing, completed=kind == "checkout.session.completed")
    if kind == "invoice.paid":
        return _invoice_effect(obj, billing)
    if kind == "customer.subscription.deleted":
        user_id = _user_id(_dig(obj, "metadata", "user_id"))
        return BillingEffect(user_id, customer=_text(obj.get("customer")), subscription="canceled")
    return None


def _checkout_effect(
    obj: dict[str, Any], billing: BillingSettings, *, completed: bool
) -> BillingEffect | None:
    user_id = _user_id(_dig(obj, "metadata", "user_id"), obj.get("client_reference_id"))
    if user_id is None:
        return None  # a checkout that mailhook did not create
    customer = _text(obj.get("customer"))
    if obj.get("mode") == "subscription":
        # Credits for a period come with its invoice.paid; this only marks the subscription.
        return BillingEffect(user_id, customer=customer, subscription="active") if completed else None
    if obj.get("mode") != "payment" or obj.get("payment_status") not in _SETTLED:
        return None
    # Keyed by the session, so "completed" and "async_payment_succeeded" grant once between them.
    source = f"stripe:{_text(obj.get('id'))[:200]}"
    return BillingEffect(
        user_id, customer=customer, grant=billing.credits_per_pack, grant_kind=KIND_ONE_TIME, source=source
    )


def _invoice_effect(obj: dict[str, Any], billing: BillingSettings) -> BillingEffect | None:
    # API versions since 2025-03 nest the subscription under ``parent``; older ones do not.
    details = _dig(obj, "parent", "subscription_details") or obj.get("subscription_details")
    subscription = _dig(details, "subscription") or obj.get("subscription")
    if not subscription:
        return None  # a one-off invoice, not a subscription period
    return BillingEffect(
        _user_id(_dig(details, "metadata", "user_id")),
        customer=_text(obj.get("customer")),
        grant=billing.credits_per_period,
        grant_kind=KIND_SUBSCRIPTION,
        source=f"stripe:{_text(obj.get('id'))[:200]}",
    )
