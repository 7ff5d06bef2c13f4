"""``POST /api/v1/inbound/cloudflare``: the HTTP face of the webhook door (mailhook/doors/webhook.py).

Authentication is the request's HMAC signature, not a bearer token. Litestar's own body limit is
off for this route: the door enforces ``cloudflare.max_message_bytes`` itself, on the announced
Content-Length and again on the bytes actually streamed, so a body is never held past the cap.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from mailhook.doors.webhook import WebhookDoor
from mailhook.services import Services


@post(
    "/api/v1/inbound/cloudflare",
    status_code=202,
    request_max_body_size=None,
    opt={"public": True},
)
async def cloudflare_inbound(request: Request[Any, Any, State]) -> Response[dict[str, Any]]:
    """One raw message (``message/rfc822``) for one recipient from the Cloudflare Email Worker.

    202 ``{"job_ids", "duplicate"}`` only after the spool commit; 422 (and 413) are permanent
    refusals the worker bounces; anything else is temporary (see cloudflare/README.md).
    """
    services: Services = request.app.state.services
    door = WebhookDoor(services.settings.cloudflare, services.directory, services.spool)
    reply = await door.receive(request.headers, request.stream())
    return Response(reply.body, status_code=reply.status, headers={"Cache-Control": "no-store"})
