"""``GET /api/health``: is the process up and can it reach its database."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

from mailhook.services import Services
from mailhook.store.db import DB_UNAVAILABLE


@get("/api/health", opt={"public": True})
async def health(state: State) -> Response[dict[str, object]]:
    """200 with spool depth and the configured model provider when the database answers, else 503."""
    services: Services = state.services
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        depth = await services.spool.depth()
    except DB_UNAVAILABLE:
        return Response({"status": "degraded", "database": "unreachable"}, status_code=503)
    llm = services.settings.llm.provider
    return Response({"status": "ok", "database": "ok", "spool": depth, "llm": llm if llm != "none" else None})
