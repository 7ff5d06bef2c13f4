"""Mailbox admin API: create, list, read, configure, pause, delete; persona history, activity, stats.

Thin handlers over :class:`mailhook.store.mailboxes.Mailboxes`. Every route needs a bearer token
and sees only the caller's mailboxes (someone else's is a 404). Bodies are capped at
:data:`MAX_BODY_BYTES` (413 past it): the largest legitimate body, a full document list, is a
quarter of that. docs/api.md is the reference.
"""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from mailhook.api.auth import current_user
from mailhook.api.schemas import (
    ActivityPageOut,
    ConfigUpdate,
    ConnectionUpdate,
    ExternalCreate,
    HostedCreate,
    MailboxOut,
    PersonaText,
    PersonaVersionOut,
    StatsOut,
    StatusChange,
    activity_page_out,
    mailbox_out,
    stats_out,
    version_out,
)
from mailhook.billing.credits import Credits
from mailhook.outbound.sandbox import outbox_replies
from mailhook.services import Services
from mailhook.store.mailboxes import DEFAULT_PAGE_SIZE, Actor, Mailboxes
from mailhook.store.models import MailboxStatus, User

MAX_BODY_BYTES = 1024 * 1024
#: ``PATCH .../connection``: two host names, a login and a password fit in a fraction of it.
MAX_CONNECTION_BODY_BYTES = 16 * 1024


def provide_mailboxes(state: State) -> Mailboxes:
    """Dependency: the mailbox service over the app's shared services."""
    services: Services = state.services
    return Mailboxes(services.sessions, services.sealer, services.settings)


class MailboxController(Controller):
    """``/api/v1/mailboxes`` and ``/api/v1/stats``."""

    path = "/api/v1"
    dependencies = {
        "user": Provide(current_user),
        "mailboxes": Provide(provide_mailboxes, sync_to_thread=False),
    }
    request_max_body_size = MAX_BODY_BYTES

    @post("/mailboxes", status_code=201)
    async def create(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        data: JSONBody[HostedCreate | ExternalCreate],
    ) -> MailboxOut:
        """A hosted (``kind: hosted``) or external (``kind: external``) mailbox."""
        if isinstance(data, HostedCreate):
            row = await mailboxes.create_hosted(user, data.handle, data.patch())
        else:
            row = await mailboxes.create_external(user, data.account(), data.patch())
        return mailbox_out(row)

    @get("/mailboxes")
    async def list_mailboxes(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        include_deleted: FromQuery[bool] = False,
    ) -> list[MailboxOut]:
        """The caller's mailboxes, oldest first (deleted ones with ``include_deleted=true``)."""
        rows = await mailboxes.list_for(user, include_deleted=include_deleted)
        return [mailbox_out(row) for row in rows]

    @get("/mailboxes/{mailbox_id:int}")
    async def get_mailbox(
        self, user: NamedDependency[User], mailboxes: NamedDependency[Mailboxes], mailbox_id: FromPath[int]
    ) -> MailboxOut:
        """One mailbox, deleted ones included (they stay for the audit trail)."""
        return mailbox_out(await mailboxes.get_for(user, mailbox_id))

    @patch("/mailboxes/{mailbox_id:int}")
    async def update(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        mailbox_id: FromPath[int],
        data: JSONBody[ConfigUpdate],
    ) -> MailboxOut:
        """Change configuration; only the fields sent change."""
        return mailbox_out(await mailboxes.update_config(user, mailbox_id, data.patch()))

    @patch("/mailboxes/{mailbox_id:int}/connection", request_max_body_size=MAX_CONNECTION_BODY_BYTES)
    async def update_connection(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        mailbox_id: FromPath[int],
        data: JSONBody[ConnectionUpdate],
    ) -> MailboxOut:
        """An external mailbox's servers, login or password; 409 for a hosted one."""
        return mailbox_out(await mailboxes.update_connection(user, mailbox_id, data.patch()))

    @post("/mailboxes/{mailbox_id:int}/status", status_code=200)
    async def change_status(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        mailbox_id: FromPath[int],
        data: JSONBody[StatusChange],
    ) -> MailboxOut:
        """Pause (``inactive``) or resume (``active``); 409 when the lifecycle forbids it."""
        row = await mailboxes.set_status(mailbox_id, MailboxStatus(data.status), Actor.OWNER, owner=user)
        return mailbox_out(row)

    @delete("/mailboxes/{mailbox_id:int}", status_code=204)
    async def delete_mailbox(
        self, user: NamedDependency[User], mailboxes: NamedDependency[Mailboxes], mailbox_id: FromPath[int]
    ) -> None:
        """Status ``deleted``, credentials erased, record kept; repeating it is harmless."""
        await mailboxes.delete(user, mailbox_id)

    @get("/mailboxes/{mailbox_id:int}/persona/history")
    async def persona_history(
        self, user: NamedDependency[User], mailboxes: NamedDependency[Mailboxes], mailbox_id: FromPath[int]
    ) -> list[PersonaVersionOut]:
        """Every persona version, newest first."""
        row = await mailboxes.get_for(user, mailbox_id)
        return [version_out(v) for v in await mailboxes.history.history(row.id)]

    @get("/mailboxes/{mailbox_id:int}/persona/history/{commit:str}")
    async def persona_version(
        self,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        mailbox_id: FromPath[int],
        commit: FromPath[str],
    ) -> PersonaText:
        """The persona text at one commit (400 for a malformed id, 404 for an unknown one)."""
        row = await mailboxes.get_for(user, mailbox_id)
        return PersonaText(commit=commit.lower(), persona=await mailboxes.history.version(row.id, commit))

    @get("/mailboxes/{mailbox_id:int}/activity")
    async def activity(
        self,
        state: State,
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        mailbox_id: FromPath[int],
        page: FromQuery[int] = 1,
        size: FromQuery[int] = DEFAULT_PAGE_SIZE,
        action: FromQuery[str | None] = None,
    ) -> ActivityPageOut:
        """The activity log, newest first: ``{items, total, page, size, pages}``."""
        result = await mailboxes.activity(user, mailbox_id, page=page, size=size, action=action)
        services: Services = state.services
        # In sandbox mode a sent reply is kept in the outbox: link it ("View reply").
        outbox = await outbox_replies(services.sessions, mailbox_id, (row.job_id for row in result.items))
        return activity_page_out(result, outbox)

    @get("/stats")
    async def stats(
        self, state: State, user: NamedDependency[User], mailboxes: NamedDependency[Mailboxes]
    ) -> StatsOut:
        """Handled and escalated, in total and per mailbox, and the credits left (null: unlimited)."""
        services: Services = state.services
        remaining = await Credits(services.sessions, services.settings).remaining(user.id)
        return stats_out(await mailboxes.counts(user), remaining)
