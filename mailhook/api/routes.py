"""Every route handler and controller the app serves, in one list (``create_app`` uses it)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from mailhook.api.auth import login
from mailhook.api.controllers.account import MeController, register
from mailhook.api.controllers.billing import BillingController
from mailhook.api.controllers.inbound import cloudflare_inbound
from mailhook.api.controllers.mailboxes import MailboxController
from mailhook.api.controllers.onboarding import OnboardingController
from mailhook.api.controllers.pending import PendingController
from mailhook.api.controllers.spool import SpoolController
from mailhook.api.controllers.unsubscribe import (
    unsubscribe,
    unsubscribe_page,
    unsubscribe_page_query,
    unsubscribe_query,
)
from mailhook.api.health import health
from mailhook.api.metrics import metrics

ROUTES: list[ControllerRouterHandler] = [
    health,
    metrics,
    login,
    register,
    MeController,
    SpoolController,
    PendingController,
    BillingController,
    MailboxController,
    OnboardingController,
    unsubscribe_page,
    unsubscribe,
    unsubscribe_page_query,
    unsubscribe_query,
    cloudflare_inbound,
]
