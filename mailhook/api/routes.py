"""Every route handler and controller the app serves, in one list (``create_app`` uses it)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from mailhook.api.auth import login
from mailhook.api.controllers.account import MeController, register
from mailhook.api.controllers.agent import AgentController
from mailhook.api.controllers.billing import BillingController
from mailhook.api.controllers.inbound import cloudflare_inbound
from mailhook.api.controllers.keys import AgentKeyController
from mailhook.api.controllers.mailboxes import MailboxController
from mailhook.api.controllers.onboarding import OnboardingController
from mailhook.api.controllers.pending import PendingController
from mailhook.api.controllers.persona_test import PersonaTestController
from mailhook.api.controllers.spool import SpoolController
from mailhook.api.controllers.unsubscribe import (
    unsubscribe,
    unsubscribe_page,
    unsubscribe_page_query,
    unsubscribe_query,
)
from mailhook.api.controllers.webhooks import WebhookController
from mailhook.api.health import health
from mailhook.api.metrics import metrics
from mailhook.api.sse import ActivityStreamController
from mailhook.api.webui import WEBUI
from mailhook.doors.milter.http import stalwart_mta_hook
from mailhook.mcp.http import mcp_endpoint

ROUTES: list[ControllerRouterHandler] = [
    health,
    metrics,
    login,
    register,
    MeController,
    SpoolController,
    PendingController,
    WebhookController,
    ActivityStreamController,
    BillingController,
    MailboxController,
    PersonaTestController,
    OnboardingController,
    AgentKeyController,
    AgentController,
    mcp_endpoint,
    unsubscribe_page,
    unsubscribe,
    unsubscribe_page_query,
    unsubscribe_query,
    cloudflare_inbound,
    stalwart_mta_hook,
    WEBUI,
]
