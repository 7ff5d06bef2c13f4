"""Every route handler and controller the app serves, in one list (``create_app`` uses it)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from mailhook.api.auth import login
from mailhook.api.controllers.spool import SpoolController
from mailhook.api.controllers.unsubscribe import unsubscribe, unsubscribe_page
from mailhook.api.health import health

ROUTES: list[ControllerRouterHandler] = [
    health,
    login,
    SpoolController,
    unsubscribe_page,
    unsubscribe,
]
