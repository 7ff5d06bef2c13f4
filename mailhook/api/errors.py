"""The one place exceptions become HTTP responses (statuses from ``mailhook.errors``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from mailhook.errors import MailhookError, http_status_for
from mailhook.logs import get_logger

log = get_logger(__name__)


def mailhook_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """A ``MailhookError`` says what went wrong; its text is written for the client."""
    status = http_status_for(exc)
    return Response({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)


def unexpected_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Anything else is a 500 with no internals in the body; the log has the type."""
    if isinstance(exc, HTTPException):
        return Response({"error": type(exc).__name__, "detail": exc.detail}, status_code=exc.status_code)
    log.error("unhandled_api_error", error=type(exc).__name__)
    return Response({"error": "InternalError", "detail": "internal error"}, status_code=500)


EXCEPTION_HANDLERS = {MailhookError: mailhook_error_handler, Exception: unexpected_error_handler}
