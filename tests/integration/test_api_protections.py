"""API protections as a client meets them: body limit, CORS, rate limits, metrics, health."""

from __future__ import annotations

import httpx
import pytest

from mailhook.services import Services

LOW_LIMITS = {"MAILHOOK_HTTP_RATE_LIMIT_IP_PER_MINUTE": "40", "MAILHOOK_HTTP_RATE_LIMIT_USER_PER_MINUTE": "5"}


async def test_body_limit_and_malformed_json(api: httpx.AsyncClient) -> None:
    big = await api.post(
        "/api/v1/auth/login",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    broken = await api.post(
        "/api/v1/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400


async def test_cors_is_off_by_default(api: httpx.AsyncClient) -> None:
    response = await api.options(
        "/api/v1/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("extra_env", [{"MAILHOOK_HTTP_CORS_ORIGINS": "https://app.example"}])
async def test_cors_allows_only_configured_origins(api: httpx.AsyncClient) -> None:
    ok = await api.get("/api/health", headers={"Origin": "https://app.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example"
    other = await api.get("/api/health", headers={"Origin": "https://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


@pytest.mark.parametrize("extra_env", [LOW_LIMITS])
async def test_rate_limits_per_user_and_per_address(api: httpx.AsyncClient) -> None:
    login = await api.post(
        "/api/v1/auth/login", json={"email": "owner@example.com", "password": "correct horse battery"}
    )
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    codes = [(await api.get("/api/v1/me", headers=auth)).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[-1] == 429, "the signed-in user's limit"
    anonymous = [(await api.get("/api/v1/pricing")).status_code for _ in range(40)]
    assert 429 in anonymous, "the per-address limit"
    assert (await api.get("/api/health")).status_code == 200, "health checks are never limited"


async def test_metrics_and_health(api: httpx.AsyncClient, services: Services) -> None:
    text = (await api.get("/metrics")).text
    assert "# TYPE mailhook_spool_jobs gauge" in text and 'mailhook_info{version="' in text
    health = (await api.get("/api/health")).json()
    assert health["database"] == "ok" and health["llm"] == "openai"
