"""``/api/v1/pending``: the owner's approval queue."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from mailhook.api.auth import current_user
from mailhook.oversight.approvals import Approvals, PendingReply
from mailhook.services import Services
from mailhook.store.models import User


@dataclass
class ApproveRequest:
    """Optional edit of the reply text before it is sent."""

    text: str | None = None


def _approvals(state: State) -> Approvals:
    services: Services = state.services
    return services.approvals


class PendingController(Controller):
    """List, read, approve and reject held replies (owners only; tenants isolated)."""

    path = "/api/v1/pending"
    dependencies = {"user": Provide(current_user)}

    @get()
    async def list_pending(self, state: State, user: NamedDependency[User]) -> list[PendingReply]:
        """Held replies of the caller's mailboxes."""
        return await _approvals(state).list(user)

    @get("/{reply_id:int}")
    async def get_pending(
        self, state: State, user: NamedDependency[User], reply_id: FromPath[int]
    ) -> PendingReply:
        """One held reply with its text and why it was held."""
        return await _approvals(state).get(user, reply_id)

    @post("/{reply_id:int}/approve", status_code=200)
    async def approve(
        self,
        state: State,
        user: NamedDependency[User],
        reply_id: FromPath[int],
        data: JSONBody[ApproveRequest | None] = None,
    ) -> dict[str, str]:
        """Send it (edited if ``text`` is given)."""
        result = await _approvals(state).approve(user, reply_id, data.text if data else None)
        return {"result": result}

    @post("/{reply_id:int}/reject", status_code=200)
    async def reject(
        self, state: State, user: NamedDependency[User], reply_id: FromPath[int]
    ) -> dict[str, str]:
        """Drop it; its text is erased."""
        await _approvals(state).reject(user, reply_id)
        return {"result": "rejected"}
