"""Owner routes for agent API keys and the agent audit trail (JWT; docs/agent-api.md).

``POST /api/v1/mailboxes/{id}/keys`` answers the key itself exactly once; listings show only a
short prefix to recognise it. Another user's mailbox is a 404.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from mailhook.agentapi.audit import AuditPage
from mailhook.agentapi.keys import KeyInfo
from mailhook.api.auth import current_user
from mailhook.services import Services
from mailhook.store.models import User


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST .../keys``."""

    name: str
    test: bool = False
    trust: str = "gated"
    scope: str = "agent"


class CreatedKey(msgspec.Struct, kw_only=True):
    """The new key's metadata, and the key itself: shown this once."""

    id: int
    name: str
    prefix: str
    test: bool
    trust: str
    scope: str
    created_at: datetime
    key: str


def _services(state: State) -> Services:
    services: Services = state.services
    return services


class AgentKeyController(Controller):
    """``/api/v1/mailboxes/{id}/keys`` and ``/api/v1/mailboxes/{id}/audit``."""

    path = "/api/v1/mailboxes/{mailbox_id:int}"
    dependencies = {"user": Provide(current_user)}

    @post("/keys", status_code=201)
    async def create_key(
        self, state: State, user: NamedDependency[User], mailbox_id: FromPath[int], data: JSONBody[KeyCreate]
    ) -> CreatedKey:
        """A new key (``mh_live_…`` or, with ``test``, ``mh_test_…``)."""
        new = await _services(state).agent.keys.create(
            user, mailbox_id, name=data.name, test=data.test, trust=data.trust, scope=data.scope
        )
        info = new.info
        return CreatedKey(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            test=info.test,
            trust=info.trust,
            scope=info.scope,
            created_at=info.created_at,
            key=new.key,
        )

    @get("/keys")
    async def list_keys(
        self, state: State, user: NamedDependency[User], mailbox_id: FromPath[int]
    ) -> list[KeyInfo]:
        """Every key of the mailbox (revoked ones too), metadata only."""
        return await _services(state).agent.keys.list(user, mailbox_id)

    @delete("/keys/{key_id:int}", status_code=204)
    async def revoke_key(
        self, state: State, user: NamedDependency[User], mailbox_id: FromPath[int], key_id: FromPath[int]
    ) -> None:
        """Revoke: the key stops working at once."""
        await _services(state).agent.keys.revoke(user, mailbox_id, key_id)

    @get("/audit")
    async def audit(
        self,
        state: State,
        user: NamedDependency[User],
        mailbox_id: FromPath[int],
        page: FromQuery[int] = 1,
        size: FromQuery[int] = 50,
    ) -> AuditPage:
        """What the mailbox's keys did, newest first (no content)."""
        return await _services(state).agent.audit.page(user, mailbox_id, page=page, size=size)
