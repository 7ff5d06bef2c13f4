"""``POST /api/v1/hooks/stalwart``: Stalwart's MTA Hooks endpoint for the milter door's checks.

Off (404) until ``milter.hook_secret`` is set; Stalwart then sends it as the HTTP basic auth
password (``[session.hook."mailhook".auth]``, stalwart/README.md), compared in constant time.
Litestar's body limit is off for this route: the body is read here up to a cap derived from
``milter.max_message_bytes`` (JSON escaping can double a message), past which the answer is 413.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from mailhook.errors import NotFound
from mailhook.logs import get_logger
from mailhook.services import Services

from . import build_checks
from .mtahook import (
    HookRequestError,
    accept_response,
    collected_from_request,
    hook_response,
    stage_of,
    tempfail_response,
)

log = get_logger(__name__)

JSON_OVERHEAD = 1024 * 1024


def _authorized(header: str, secret: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, _, password = decoded.partition(b":")
    return hmac.compare_digest(password, secret.encode("utf-8"))


async def _read_capped(stream: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _json(payload: dict[str, Any], status: int = 200) -> Response[dict[str, Any]]:
    return Response(payload, status_code=status, headers={"Cache-Control": "no-store"})


@post("/api/v1/hooks/stalwart", status_code=200, request_max_body_size=None, opt={"public": True})
async def stalwart_mta_hook(request: Request[Any, Any, State]) -> Response[dict[str, Any]]:
    """One MTA Hooks request; 200 with the action and modifications (docs/milter.md)."""
    services: Services = request.app.state.services
    settings = services.settings.milter
    if not settings.hook_secret:
        raise NotFound("not found")
    if not _authorized(request.headers.get("authorization", ""), settings.hook_secret):
        return Response(
            {"detail": "authentication required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="mailhook"'},
        )
    body = await _read_capped(request.stream(), 2 * settings.max_message_bytes + JSON_OVERHEAD)
    if body is None:
        return _json({"detail": "request too large"}, 413)
    try:
        payload = json.loads(body)
        if stage_of(payload) != "DATA":
            return _json(accept_response())
        collected = collected_from_request(payload, settings.max_message_bytes)
    except (ValueError, HookRequestError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        log.warning("mta_hook_bad_request", problem=type(exc).__name__)
        return _json({"detail": "not an MTA Hooks request"}, 400)
    try:
        verdict = await build_checks(services, hold_action="reject").verdict(collected)
    except Exception as exc:  # any failure: the configured answer, never lost mail
        log.error("mta_hook_check_failed", error=type(exc).__name__, queue_id=collected.queue_id)
        return _json(tempfail_response() if settings.on_error == "tempfail" else accept_response())
    return _json(hook_response(verdict))
