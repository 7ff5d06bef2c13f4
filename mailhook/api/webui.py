"""The web UI: static HTML/CSS/JS from ``webui/static`` served under ``/app`` (no build step).

The pages are plain files and clients of the JSON API (``/api/v1``); nothing is rendered here.
Every UI response carries a strict Content-Security-Policy (scripts, styles and fetches from
this origin only, no inline code, no framing), so a value that slipped into the DOM unescaped
still could not run script. ``/`` sends the browser to the UI, and ``/billing`` (where Stripe
Checkout returns the browser, docs/billing.md) to the billing page with its query kept.

The directory is found without a setting: ``webui/static`` next to the package in a checkout
(``make run``, editable installs), else ``<sys.prefix>/share/mailhook/webui`` for an installed
copy (the Docker image puts it there).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from mailhook.logs import get_logger

log = get_logger(__name__)

UI_PATH = "/app"

#: ``style-src 'self'`` also forbids ``style=""`` attributes; the scripts set styles through the
#: CSSOM, which CSP allows. ``connect-src 'self'`` covers fetch and EventSource (SSE).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time (ETag/Last-Modified make that cheap): an upgrade shows at once.
    "Cache-Control": "no-cache",
}


def candidate_dirs() -> list[Path]:
    """Where the UI files may be, in the order they are tried."""
    checkout = Path(__file__).resolve().parents[2] / "webui" / "static"
    installed = Path(sys.prefix) / "share" / "mailhook" / "webui"
    return [checkout, installed]


def webui_dir() -> Path:
    """The first candidate that holds ``index.html`` (the checkout's when none does)."""
    candidates = candidate_dirs()
    for directory in candidates:
        if (directory / "index.html").is_file():
            return directory
    log.warning("webui_missing", looked_in=[str(c) for c in candidates])
    return candidates[0]


@get("/", include_in_schema=False, opt={"public": True})
async def root_redirect() -> Redirect:
    """The UI is the front page."""
    return Redirect(f"{UI_PATH}/", status_code=302)


@get("/billing", include_in_schema=False, opt={"public": True})
async def billing_return(request: Request[Any, Any, Any]) -> Redirect:
    """Stripe Checkout's return address: the billing page, with ``checkout`` and ``session_id``."""
    query = {k: v for k, v in request.query_params.items() if k in {"checkout", "session_id"}}
    return Redirect(f"{UI_PATH}/billing.html", status_code=302, query_params=query)


def security_headers(app: ASGIApp) -> ASGIApp:
    """Middleware adding :data:`SECURITY_HEADERS` to every UI response, files included (the
    static files handler is a plain ASGI app, which layer ``response_headers`` never reach)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def webui_router() -> Router:
    """The UI's routes: the static files under :data:`UI_PATH` and the two redirects."""
    static = create_static_files_router(
        path=UI_PATH, directories=[webui_dir()], html_mode=True, name="webui", opt={"public": True}
    )
    return Router(
        path="/", route_handlers=[static, root_redirect, billing_return], middleware=[security_headers]
    )


WEBUI = webui_router()
