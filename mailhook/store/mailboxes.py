"""Mailboxes: create (hosted or external), read, configure, change status and delete, per owner.

Every method that takes an owner sees only that owner's mailboxes: another user's mailbox is
:class:`NotFound`, never :class:`Forbidden`, so ids reveal nothing about other tenants.

External credentials are sealed with the installation's Fernet keys before they reach the
database and are never handed back. Deleting a mailbox keeps its row (status ``deleted``) for the
audit trail, erases its credentials, and keeps its address reserved for good: mail meant for the
old owner can never reach someone who registers the same handle later.

Status changes follow one table, :data:`TRANSITIONS` (docs/api.md explains it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.agent.documents import MAX_URL, parse_documents
from mailhook.agent.overrides import clean_endpoint_and_key, clean_model, clean_provider
from mailhook.agent.tokens import check_persona
from mailhook.crypto import Sealer
from mailhook.errors import Conflict, NotFound, ValidationFailed
from mailhook.logs import get_logger
from mailhook.settings import Settings
from mailhook.store.accounts import clean_email
from mailhook.store.activity import ActivityAction
from mailhook.store.fields import clean_host, clean_login, clean_password, clean_port, clean_text
from mailhook.store.models import (
    Activity,
    AgentInboxItem,
    ImapState,
    Mailbox,
    MailboxStatus,
    OversightMode,
    User,
    require_id,
)
from mailhook.store.persona_history import PersonaHistory
from mailhook.store.servers import ExternalAccount

log = get_logger(__name__)

HANDLE: Final = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_HANDLE: Final = 64
#: Role addresses (RFC 2142 and common system accounts) that must reach a person, never an agent.
RESERVED_HANDLES: Final = frozenset(
    {
        "abuse", "admin", "administrator", "hostmaster", "mailer-daemon", "mailhook", "news",
        "noc", "nobody", "noreply", "no-reply", "postmaster", "root", "security", "uucp",
        "usenet", "webmaster", "www",
    }
)  # fmt: skip
#: 0 = push (IMAP IDLE), 1 = every minute, or every N hours for N from 1 to 24.
POLL_INTERVALS: Final = frozenset({0, 1, *(60 * hours for hours in range(1, 25))})
MAX_TRIGGERS: Final = 50
MAX_TRIGGER_CHARS: Final = 500
DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 200
MAX_PAGE: Final = 1_000_000
HANDLED: Final = (ActivityAction.REPLIED, ActivityAction.DRAFTED, ActivityAction.TESTED_PERSONA)


class Actor(enum.StrEnum):
    """Who asks for a status change."""

    OWNER = "owner"
    BILLING = "billing"
    SYSTEM = "system"
    ADMIN = "admin"


_S = MailboxStatus
_LIVE = tuple(s for s in MailboxStatus if s is not _S.DELETED)
#: (from, to) pairs each actor may make. ``deleted`` is reached only through :meth:`delete`.
TRANSITIONS: Final[dict[Actor, frozenset[tuple[MailboxStatus, MailboxStatus]]]] = {
    Actor.OWNER: frozenset(
        {(_S.ACTIVE, _S.INACTIVE), (_S.INACTIVE, _S.ACTIVE), (_S.ERROR, _S.ACTIVE), (_S.ERROR, _S.INACTIVE)}
    ),
    # mailhook.billing.credits pauses only active mailboxes, and wakes them at the next grant.
    Actor.BILLING: frozenset({(_S.ACTIVE, _S.PENDING_BILLING), (_S.PENDING_BILLING, _S.ACTIVE)}),
    Actor.SYSTEM: frozenset({(_S.ACTIVE, _S.ERROR), (_S.ERROR, _S.ACTIVE)}),
    Actor.ADMIN: frozenset((a, b) for a in _LIVE for b in _LIVE if a is not b),
}


@dataclass(frozen=True)
class ConfigPatch:
    """Configuration to change; ``None`` leaves a field as it is."""

    display_name: str | None = None
    persona: str | None = None
    tone: str | None = None
    rules: str | None = None
    signature: str | None = None
    triggers: list[str] | None = None
    mode: str | None = None
    documents: list[object] | str | None = None
    thread_depth: int | None = None
    max_output_tokens: int | None = None
    reply_all: bool | None = None
    poll_interval_minutes: int | None = None
    answered_by: str | None = None
    llm_provider: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None


@dataclass(frozen=True, repr=False)
class ConnectionPatch:
    """Connection settings of an external mailbox to change; ``None`` leaves one as it is."""

    imap_host: str | None = None
    imap_port: int | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    login: str | None = None
    #: Write-only: sealed before it is stored, never returned, never in a repr or a log line.
    password: str | None = None

    def __repr__(self) -> str:
        sent = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
        return f"ConnectionPatch(fields={sent})"


@dataclass(frozen=True)
class ActivityPage:
    """One page of a mailbox's activity, newest first."""

    items: list[Activity]
    total: int
    page: int
    size: int
    pages: int


@dataclass(frozen=True)
class MailboxCounts:
    """Activity counts of one mailbox, by action."""

    mailbox_id: int
    address: str
    status: str
    counts: dict[str, int]

    @property
    def handled(self) -> int:
        """Replied, drafted and persona tests."""
        return sum(self.counts.get(action.value, 0) for action in HANDLED)

    @property
    def escalated(self) -> int:
        """Escalated to the owner."""
        return self.counts.get(ActivityAction.ESCALATED.value, 0)


# --- validation ---------------------------------------------------------------------------------


def clean_handle(handle: str) -> str:
    """A hosted mailbox handle: lower-case letters, digits and dashes, not a role address."""
    if len(handle) > MAX_HANDLE:
        raise ValidationFailed(f"handle must be at most {MAX_HANDLE} characters")
    if not HANDLE.fullmatch(handle):
        raise ValidationFailed(
            "handle must be lower-case letters a-z, digits and dashes, starting with a letter or digit"
        )
    if handle in RESERVED_HANDLES:
        raise ValidationFailed(f"handle {handle!r} is reserved")
    return handle


#: Checks of the connection fields (the password is sealed apart).
_CONNECTION_CHECKS: Final[dict[str, Callable[[Any], Any]]] = {
    "imap_host": lambda v: clean_host("imap_host", v),
    "imap_port": lambda v: clean_port("imap_port", v),
    "smtp_host": lambda v: clean_host("smtp_host", v),
    "smtp_port": lambda v: clean_port("smtp_port", v),
    "login": clean_login,
}


def clean_poll_interval(value: int) -> int:
    """0 (push with IMAP IDLE), 1 minute, or a whole number of hours up to 24 (in minutes)."""
    if value not in POLL_INTERVALS:
        raise ValidationFailed(
            "poll_interval_minutes must be 0 (push, IMAP IDLE), 1, or a whole number of hours "
            "in minutes (60, 120, ... 1440)"
        )
    return value


def clean_triggers(value: list[str]) -> list[str]:
    """At most 50 non-empty strings of at most 500 characters each."""
    if len(value) > MAX_TRIGGERS:
        raise ValidationFailed(f"triggers: at most {MAX_TRIGGERS} are allowed, got {len(value)}")
    cleaned = []
    for number, trigger in enumerate(value, start=1):
        text = clean_text(f"trigger {number}", trigger, MAX_TRIGGER_CHARS).strip()
        if not text:
            raise ValidationFailed(f"trigger {number} is empty")
        cleaned.append(text)
    return cleaned


def clean_mode(value: str) -> str:
    """One of the oversight modes."""
    if value not in {mode.value for mode in OversightMode}:
        raise ValidationFailed(f"mode must be one of {', '.join(m.value for m in OversightMode)}")
    return value


def clean_answered_by(value: str) -> str:
    """``mailhook`` (the built-in model answers) or ``api`` (the owner's agent, docs/agent-api.md)."""
    if value not in ("mailhook", "api"):
        raise ValidationFailed("answered_by must be mailhook or api")
    return value


def clean_documents(value: list[object] | str) -> list[dict[str, str]]:
    """An inline list (validated item by item) or a manifest URL, in the stored form.

    A manifest is stored as ``[{"manifest": url}]``: the column holds a list either way.
    """
    if isinstance(value, list):
        return [dataclasses.asdict(doc) for doc in parse_documents(value)]
    url = value.strip()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValidationFailed("documents: the manifest is not a valid URL") from None
    if len(url) > MAX_URL or parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise ValidationFailed(
            f"documents: a manifest must be an http(s) URL without user name or password, "
            f"at most {MAX_URL} characters"
        )
    return [{"manifest": url}]


def _bounded(field: str, low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValidationFailed(f"{field} must be between {low} and {high}")
        return value

    return check


#: Synchronous checks per config field; the persona (token count) is checked on its own.
_CHECKS: Final[dict[str, Callable[[Any], Any]]] = {
    "display_name": lambda v: clean_text("display_name", v, 200).strip(),
    "tone": lambda v: clean_text("tone", v, 200),
    "rules": lambda v: clean_text("rules", v, 10_000),
    "signature": lambda v: clean_text("signature", v, 2_000),
    "triggers": clean_triggers,
    "mode": clean_mode,
    "documents": clean_documents,
    "thread_depth": _bounded("thread_depth", 0, 50),
    "max_output_tokens": _bounded("max_output_tokens", 50, 8000),
    "reply_all": bool,
    "poll_interval_minutes": clean_poll_interval,
    "answered_by": clean_answered_by,
    "llm_provider": clean_provider,
    "llm_model": clean_model,
}
#: Checked by the service itself: the URL is resolved (SSRF check), the key is sealed.
_CHECKED_APART: Final = frozenset({"persona", "llm_base_url", "llm_api_key"})


async def clean_config(patch: ConfigPatch, *, kind: str) -> dict[str, Any]:
    """The validated values of the fields ``patch`` sets."""
    values = {f.name: getattr(patch, f.name) for f in dataclasses.fields(patch)}
    values = {name: value for name, value in values.items() if value is not None}
    if "poll_interval_minutes" in values and kind != "external":
        raise ValidationFailed("poll_interval_minutes applies to external mailboxes only")
    cleaned = {name: _CHECKS[name](value) for name, value in values.items() if name not in _CHECKED_APART}
    if "persona" in values:
        persona = clean_text("persona", values["persona"], 1_000_000)
        # Counting tokens of a long text takes a while: keep it off the event loop.
        await asyncio.to_thread(check_persona, persona)
        cleaned["persona"] = persona
    return cleaned


def _check_id(mailbox_id: int) -> None:
    require_id(mailbox_id, "mailbox")


# --- the service --------------------------------------------------------------------------------


class Mailboxes:
    """The mailbox service shared by the API, the CLI and billing."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self._settings = settings
        self.history = PersonaHistory(settings.data_dir / "personas")

    async def create_hosted(self, owner: User, handle: str, config: ConfigPatch | None = None) -> Mailbox:
        """A mailbox at ``handle@<agent.domain>``; :class:`Conflict` if the address is taken."""
        address = f"{clean_handle(handle)}@{self._settings.agent.domain.lower()}"
        return await self._create(owner, Mailbox(kind="hosted", address=address), config or ConfigPatch())

    async def create_external(
        self, owner: User, account: ExternalAccount, config: ConfigPatch | None = None
    ) -> Mailbox:
        """A mailbox on another server; the password is sealed before it is stored."""
        address = clean_email(account.address)
        if address.rpartition("@")[2] == self._settings.agent.domain.lower():
            raise ValidationFailed(f"addresses on {self._settings.agent.domain} are hosted mailboxes")
        servers = account.checked()
        mailbox = Mailbox(
            kind="external",
            address=address,
            imap_host=servers.imap_host,
            imap_port=servers.imap_port,
            smtp_host=servers.smtp_host,
            smtp_port=servers.smtp_port,
            login=servers.login,
            password_sealed=self._sealer.seal(servers.password.encode()),
            poll_interval_minutes=clean_poll_interval(account.poll_interval_minutes),
        )
        return await self._create(owner, mailbox, config or ConfigPatch())

    async def _create(self, owner: User, mailbox: Mailbox, config: ConfigPatch) -> Mailbox:
        values = await clean_config(config, kind=mailbox.kind)
        values |= await self._model_endpoint(config)
        for name, value in values.items():
            setattr(mailbox, name, value)
        mailbox.owner_id = owner.id
        mailbox.status = MailboxStatus.ACTIVE.value
        try:
            async with self._sessions() as session, session.begin():
                session.add(mailbox)
                await session.flush()
                # A folder under a brand-new id is left over from a mailbox that no longer exists.
                await self.history.erase(mailbox.id)
                if mailbox.persona:
                    await self.history.record(mailbox.id, mailbox.persona, owner.email)
        except IntegrityError:
            raise Conflict(f"mailbox {mailbox.address} already exists") from None
        return mailbox

    async def list_for(self, owner: User, *, include_deleted: bool = False) -> list[Mailbox]:
        """The owner's mailboxes, oldest first; deleted ones only on request."""
        query = select(Mailbox).where(Mailbox.owner_id == owner.id).order_by(Mailbox.id)
        if not include_deleted:
            query = query.where(Mailbox.status != MailboxStatus.DELETED.value)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def get_for(self, owner: User, mailbox_id: int) -> Mailbox:
        """One of the owner's mailboxes (deleted ones too), or :class:`NotFound`."""
        async with self._sessions() as session:
            return await self._owned(session, owner, mailbox_id)

    async def _owned(
        self, session: AsyncSession, owner: User, mailbox_id: int, *, for_update: bool = False
    ) -> Mailbox:
        _check_id(mailbox_id)
        query = select(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.owner_id == owner.id)
        mailbox = await session.scalar(query.with_for_update() if for_update else query)
        if mailbox is None:
            raise NotFound("no such mailbox")
        return mailbox

    async def update_config(self, owner: User, mailbox_id: int, patch: ConfigPatch) -> Mailbox:
        """Apply a validated patch; a new persona is committed to the persona history.

        Validation (token counting can take a moment) runs before the transaction, which on
        SQLite holds the database's write lock. The git commit happens inside it, after the row
        is locked: a failed commit rolls the change back, and two changes to one mailbox are
        recorded in order.
        """
        kind = (await self.get_for(owner, mailbox_id)).kind  # the kind never changes
        values = await clean_config(patch, kind=kind)
        values |= await self._model_endpoint(patch)
        async with self._sessions() as session, session.begin():
            mailbox = await self._owned(session, owner, mailbox_id, for_update=True)
            if mailbox.status == MailboxStatus.DELETED.value:
                raise Conflict("mailbox is deleted")
            persona_changed = "persona" in values and values["persona"] != mailbox.persona
            for name, value in values.items():
                setattr(mailbox, name, value)
            await session.flush()
            if persona_changed:
                await self.history.record(mailbox.id, mailbox.persona, owner.email)
        return mailbox

    async def update_connection(self, owner: User, mailbox_id: int, patch: ConnectionPatch) -> Mailbox:
        """Change an external mailbox's servers, login or password (sealed); only those sent.

        The IMAP door restarts the account's watcher at its next tick, because the row's
        connection fingerprint changed (docs/imap.md); the failure count is cleared so the new
        settings are tried at once, not after the old backoff. A mailbox the door paused for a
        refused login or host stays ``inactive`` until a login with the new settings works.
        """
        values = self._connection_values(patch)
        async with self._sessions() as session, session.begin():
            mailbox = await self._owned(session, owner, mailbox_id, for_update=True)
            if mailbox.kind != "external":
                raise Conflict("hosted mailboxes have no connection settings; only external ones do")
            if mailbox.status == MailboxStatus.DELETED.value:
                raise Conflict("mailbox is deleted")
            for name, value in values.items():
                setattr(mailbox, name, value)
            await session.execute(
                update(ImapState).where(ImapState.mailbox_id == mailbox.id).values(failures=0, last_error="")
            )
        # Which fields changed, never their values (the activity log is for mail, not settings).
        changed = sorted(name.removesuffix("_sealed") for name in values)
        log.info("mailbox_connection_changed", mailbox=mailbox_id, fields=changed)
        return mailbox

    def _connection_values(self, patch: ConnectionPatch) -> dict[str, Any]:
        sent = {f.name: getattr(patch, f.name) for f in dataclasses.fields(patch)}
        sent = {name: value for name, value in sent.items() if value is not None}
        if not sent:
            raise ValidationFailed(
                "send at least one of imap_host, imap_port, smtp_host, smtp_port, login, password"
            )
        values = {name: _CONNECTION_CHECKS[name](value) for name, value in sent.items() if name != "password"}
        if "password" in sent:
            values["password_sealed"] = self._sealer.seal(clean_password(sent["password"]).encode())
        return values

    async def _model_endpoint(self, patch: ConfigPatch) -> dict[str, Any]:
        """The mailbox's model URL (resolved and refused if private) and its sealed API key."""
        url, key = patch.llm_base_url, patch.llm_api_key
        return await clean_endpoint_and_key(url, key, self._settings, self._sealer)

    async def set_status(
        self,
        mailbox_id: int,
        status: MailboxStatus,
        actor: Actor,
        *,
        owner: User | None = None,
        reason: str = "",
    ) -> Mailbox:
        """Move a mailbox to ``status`` if ``actor`` may; :class:`Conflict` if not.

        Owners must pass themselves as ``owner`` (their scope); billing, the system and admins
        act on any mailbox. Asking for the current status again changes nothing.
        """
        if (actor is Actor.OWNER) != (owner is not None):
            raise ValueError("owner is given exactly when the actor is the owner")
        if status is MailboxStatus.DELETED:
            raise ValidationFailed("delete a mailbox with DELETE, not a status change")
        async with self._sessions() as session, session.begin():
            mailbox = await self._locked(session, mailbox_id, owner)
            current = MailboxStatus(mailbox.status)
            if current is MailboxStatus.DELETED:
                raise Conflict("mailbox is deleted")
            if current is status:
                return mailbox
            if (current, status) not in TRANSITIONS[actor]:
                raise Conflict(f"the {actor.value} cannot change a mailbox from {current} to {status}")
            mailbox.status = status.value
            mailbox.status_reason = clean_text("reason", reason, 500)
        return mailbox

    async def _locked(self, session: AsyncSession, mailbox_id: int, owner: User | None) -> Mailbox:
        if owner is not None:
            return await self._owned(session, owner, mailbox_id, for_update=True)
        _check_id(mailbox_id)
        mailbox = await session.scalar(select(Mailbox).where(Mailbox.id == mailbox_id).with_for_update())
        if mailbox is None:
            raise NotFound("no such mailbox")
        return mailbox

    async def delete(self, owner: User, mailbox_id: int) -> Mailbox:
        """Mark the mailbox deleted and erase its credentials; the row stays for the audit trail.

        Deleting a deleted mailbox changes nothing (DELETE is idempotent).
        """
        async with self._sessions() as session, session.begin():
            mailbox = await self._owned(session, owner, mailbox_id, for_update=True)
            mailbox.status = MailboxStatus.DELETED.value
            mailbox.status_reason = "deleted by its owner"
            mailbox.password_sealed = None
            # Mail waiting for the mailbox's own agent goes with it (docs/agent-api.md).
            await session.execute(sa_delete(AgentInboxItem).where(AgentInboxItem.mailbox_id == mailbox.id))
            mailbox.llm_api_key_sealed = None
            mailbox.login = ""
        return mailbox

    async def activity(
        self,
        owner: User,
        mailbox_id: int,
        *,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
        action: str | None = None,
    ) -> ActivityPage:
        """One page of the mailbox's activity log, newest first, optionally of one action."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= page <= MAX_PAGE:
            raise ValidationFailed(f"page must be between 1 and {MAX_PAGE:,}")
        if action is not None and action not in {a.value for a in ActivityAction}:
            raise ValidationFailed(f"action must be one of {', '.join(a.value for a in ActivityAction)}")
        where = [Activity.mailbox_id == mailbox_id]
        if action is not None:
            where.append(Activity.action == action)
        rows = (
            select(Activity)
            .where(*where)
            .order_by(Activity.created_at.desc(), Activity.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        )
        async with self._sessions() as session:
            await self._owned(session, owner, mailbox_id)
            total = int(await session.scalar(select(func.count()).select_from(Activity).where(*where)) or 0)
            items = list((await session.scalars(rows)).all())
        return ActivityPage(items, total, page, size, math.ceil(total / size))

    async def counts(self, owner: User) -> list[MailboxCounts]:
        """Activity counts by action for each of the owner's mailboxes (deleted ones included)."""
        query = (
            select(Activity.mailbox_id, Activity.action, func.count())
            .join(Mailbox, Mailbox.id == Activity.mailbox_id)
            .where(Mailbox.owner_id == owner.id)
            .group_by(Activity.mailbox_id, Activity.action)
        )
        owned = select(Mailbox).where(Mailbox.owner_id == owner.id).order_by(Mailbox.id)
        async with self._sessions() as session:
            mailboxes = list((await session.scalars(owned)).all())
            rows = (await session.execute(query)).all()
        counts: dict[int, dict[str, int]] = {m.id: {} for m in mailboxes}
        for mailbox_id, action, count in rows:
            # A mailbox created between the two queries has no activity yet: nothing to lose.
            counts.setdefault(mailbox_id, {})[action] = int(count)
        return [MailboxCounts(m.id, m.address, m.status, counts[m.id]) for m in mailboxes]
