"""The public unsubscribe page: GET shows a confirmation, POST (one-click, RFC 8058) records it.

GET never unsubscribes, because link scanners in mail gateways fetch every URL; RFC 8058 §3.1
sends one-click unsubscribes as a POST with ``List-Unsubscribe=One-Click``.
"""

from __future__ import annotations

from html import escape

from litestar import Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from mailhook.errors import NotFound
from mailhook.services import Services
from mailhook.store.suppressions import Suppressions, UnsubscribeLinks

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    return Response(
        PAGE.format(title=escape(title), body=body),
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _links(state: State) -> UnsubscribeLinks:
    services: Services = state.services
    return UnsubscribeLinks(services.settings.security.jwt_secret, services.settings.public_url)


@get("/u/{token:str}", opt={"public": True})
async def unsubscribe_page(state: State, token: FromPath[str]) -> Response[str]:
    """Confirm before unsubscribing (the link in the List-Unsubscribe header and footer)."""
    return _confirm(state, token)


@get("/unsubscribe", opt={"public": True})
async def unsubscribe_page_query(state: State, token: FromQuery[str] = "") -> Response[str]:
    """The same page as ``/u/<token>``, for links that carry the token as a query parameter."""
    return _confirm(state, token)


@post("/unsubscribe", status_code=200, opt={"public": True})
async def unsubscribe_query(state: State, token: FromQuery[str] = "") -> Response[str]:
    """The same one-click target as ``POST /u/<token>``."""
    return await _unsubscribe(state, token)


def _confirm(state: State, token: str) -> Response[str]:
    try:
        address = _links(state).address(token)
    except NotFound:
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
    body = (
        f"<p>Stop automatic replies from AI agents on this server to <strong>{escape(address)}</strong>?</p>"
        f'<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", body)


@post("/u/{token:str}", status_code=200, opt={"public": True})
async def unsubscribe(state: State, token: FromPath[str]) -> Response[str]:
    """Record the unsubscribe (one-click POST or the confirmation form)."""
    return await _unsubscribe(state, token)


async def _unsubscribe(state: State, token: str) -> Response[str]:
    try:
        address = _links(state).address(token)
    except NotFound:
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
    services: Services = state.services
    await Suppressions(services.sessions).add(address)
    return _page("Unsubscribed", "<p>Done. AI agents on this server will not write to you again.</p>")
