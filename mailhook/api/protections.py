"""Request protections: body size, CORS (off unless origins are configured), rate limits.

Two limits apply: per client address (stops a flood from one place, signed in or not) and per
signed-in user (stops one account from hogging a shared instance from many addresses). The
counters live in process memory: with several nodes each node counts on its own, which the
per-node limit accounts for; the login limiter (store/login_limits.py) is the shared one.
"""

from __future__ import annotations

from typing import Any

import jwt
from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.types import Middleware

from mailhook.settings import Settings

#: Probes and public pages outside the limits (health checks run every few seconds).
UNLIMITED_PATHS = ["/api/health", "/metrics"]


def cors(settings: Settings) -> CORSConfig | None:
    """CORS only for the configured origins; no wildcard with credentials."""
    origins = [o.strip() for o in settings.http.cors_origins.split(",") if o.strip()]
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins, allow_credentials=False, allow_headers=["authorization", "content-type"]
    )


def _user_key(secret: str) -> Any:
    def identify(request: Request[Any, Any, Any]) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                claims = jwt.decode(token.strip(), secret, algorithms=["HS256"])
                return f"user:{claims.get('sub')}"
            except jwt.PyJWTError:
                pass
        return f"anon:{get_remote_address(request)}"

    return identify


def _signed_in(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def rate_limits(settings: Settings) -> list[Middleware]:
    """Per-address and per-user limits as middleware."""
    per_ip = RateLimitConfig(
        rate_limit=("minute", settings.http.rate_limit_ip_per_minute),
        exclude=UNLIMITED_PATHS,
        store="rate_limit_ip",
    )
    per_user = RateLimitConfig(
        rate_limit=("minute", settings.http.rate_limit_user_per_minute),
        exclude=UNLIMITED_PATHS,
        identifier_for_request=_user_key(settings.security.jwt_secret),
        check_throttle_handler=_signed_in,
        store="rate_limit_user",
    )
    return [per_ip.middleware, per_user.middleware]
