"""API authentication: HS256 JWTs (7-day lifetime) signed with ``security.jwt_secret``.

Login answers the same error, after the same work, for an unknown e-mail and a wrong password,
so the endpoint does not reveal which addresses have accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import JSONBody

from mailhook.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from mailhook.services import Services
from mailhook.store.accounts import Accounts, hash_password, verify_password
from mailhook.store.login_limits import LoginLimiter
from mailhook.store.models import User, utcnow

TOKEN_TTL = timedelta(days=7)
ALGORITHM = "HS256"
#: Verified against when the e-mail is unknown, so both failures cost the same time.
_DUMMY_HASH = hash_password("mailhook-timing-equaliser")


def issue_token(user_id: int, secret: str) -> str:
    """A signed token for a user."""
    now = utcnow()
    claims = {"sub": str(user_id), "iat": int(now.timestamp()), "exp": int((now + TOKEN_TTL).timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def user_id_from_token(token: str, secret: str) -> int:
    """The user id in a valid token; :class:`Unauthorized` for anything else."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise Unauthorized("invalid or expired token") from None


async def current_user(request: Request[Any, Any, Any]) -> User:
    """Dependency: the user behind ``Authorization: Bearer <token>``."""
    services: Services = request.app.state.services
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    user_id = user_id_from_token(token.strip(), services.settings.security.jwt_secret)
    async with services.sessions() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


def require_admin(user: User) -> None:
    """Raise :class:`Forbidden` unless the user is an admin."""
    if not user.is_admin:
        raise Forbidden("admin only")


@dataclass
class LoginRequest:
    """Credentials."""

    email: str
    password: str


@post("/api/v1/auth/login", status_code=200)
async def login(
    data: JSONBody[LoginRequest], state: State, request: Request[Any, Any, Any]
) -> dict[str, str]:
    """Exchange e-mail and password for a token (failed attempts are rate limited)."""
    if len(data.email) > 320 or len(data.password) > 1024:
        raise ValidationFailed("e-mail or password too long")
    services: Services = state.services
    limiter = LoginLimiter(services.sessions)
    client = request.client.host if request.client else "unknown"
    await limiter.check(data.email, client)
    try:
        user = await Accounts(services.sessions).user_by_email(data.email)
    except (NotFound, ValidationFailed):
        verify_password(_DUMMY_HASH, data.password)
        user = None
    if user is None or not verify_password(user.password_hash, data.password):
        await limiter.failed(data.email, client)
        raise Unauthorized("wrong e-mail or password")
    await limiter.succeeded(data.email)
    return {"token": issue_token(user.id, services.settings.security.jwt_secret), "token_type": "bearer"}
