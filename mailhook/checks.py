"""``mailhook check``: configuration, database, migrations and model endpoint, in plain words."""

from __future__ import annotations

import shutil

import httpx
from sqlalchemy import text

from mailhook.services import build_services
from mailhook.settings import Settings
from mailhook.store.db import DB_UNAVAILABLE
from mailhook.store.migrate import pending_revisions


async def run_checks(settings: Settings) -> list[str]:
    """Every problem found, as a sentence; empty when all is well."""
    problems: list[str] = []
    services = build_services(settings)
    try:
        try:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            pending = await pending_revisions(services.engine)
            if pending:
                problems.append(f"database needs migrations ({len(pending)} pending): run `mailhook migrate`")
        except DB_UNAVAILABLE as exc:
            problems.append(f"database unreachable ({type(exc).__name__}); check database.url")
        problems += await _check_llm(settings)
        if shutil.which("git") is None:
            problems.append("`git` is not installed: persona history needs it (apt-get install git)")
        if settings.outbound.mode == "smtp" and not settings.outbound.relay_host:
            problems.append("outbound.mode is smtp but outbound.relay_host is empty")
    finally:
        await services.close()
    return problems


async def _check_llm(settings: Settings) -> list[str]:
    llm = settings.llm
    if llm.provider == "none":
        return ["llm.provider is none: every message will be escalated to its owner"]
    if not llm.base_url and not llm.api_key:
        return ["llm.api_key is empty for the provider's public endpoint"]
    url = (llm.base_url or "https://api.openai.com/v1").rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {llm.api_key}"} if llm.api_key else {}
    try:
        async with httpx.AsyncClient(timeout=min(llm.timeout_seconds, 10.0)) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return [f"model endpoint {url} unreachable ({type(exc).__name__})"]
    if response.status_code in (401, 403):
        return [f"model endpoint refused the API key (HTTP {response.status_code})"]
    if response.status_code >= 500:
        return [f"model endpoint answered HTTP {response.status_code}"]
    return []
