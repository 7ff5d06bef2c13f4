"""The account: register, who am I, and erase me (GDPR Art. 17)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from mailhook.api.auth import current_user, issue_token
from mailhook.billing.credits import Credits
from mailhook.errors import Unauthorized
from mailhook.services import Services
from mailhook.store.accounts import Accounts, verify_password
from mailhook.store.erasure import erase_user
from mailhook.store.models import User


@dataclass
class RegisterRequest:
    """A new account."""

    email: str
    password: str


@dataclass
class EraseRequest:
    """Erasure needs the password again, so a stolen token alone cannot wipe an account."""

    password: str


@dataclass
class Profile:
    """What ``GET /me`` shows."""

    id: int
    email: str
    plan: str
    is_admin: bool
    remaining_credits: int | None
    subscription_status: str


def _services(state: State) -> Services:
    services: Services = state.services
    return services


@post("/api/v1/auth/register", status_code=201)
async def register(data: JSONBody[RegisterRequest], state: State) -> dict[str, str]:
    """Create an account and return a token for it."""
    services = _services(state)
    user = await Accounts(services.sessions).create_user(
        data.email[:400], data.password[:2000], free_credits=services.settings.billing.free_credits
    )
    return {"token": issue_token(user.id, services.settings.security.jwt_secret), "token_type": "bearer"}


class MeController(Controller):
    """``/api/v1/me``."""

    path = "/api/v1/me"
    dependencies = {"user": Provide(current_user)}

    @get()
    async def me(self, state: State, user: NamedDependency[User]) -> Profile:
        """Profile, plan and remaining credits (null: unlimited)."""
        services = _services(state)
        remaining = await Credits(services.sessions, services.settings).remaining(user.id)
        return Profile(user.id, user.email, user.plan, user.is_admin, remaining, user.subscription_status)

    @delete(status_code=200)
    async def erase(
        self, state: State, user: NamedDependency[User], data: JSONBody[EraseRequest]
    ) -> dict[str, int]:
        """Erase the account and everything it owns."""
        if not verify_password(user.password_hash, data.password[:2000]):
            raise Unauthorized("password does not match")
        services = _services(state)
        removed = await erase_user(services.engine, services.sessions, services.settings.data_dir, user.id)
        return {"erased_mailboxes": removed}
