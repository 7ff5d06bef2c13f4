"""Request and response shapes of the mailbox API (docs/api.md).

Requests are msgspec structs that refuse unknown fields, so a misspelt field in a PATCH is a 400
rather than a silent no-op; ``UNSET`` tells "not sent" from any value. Responses are dataclasses
built from rows by the functions below, which never copy a sealed column or a login: what is not
copied cannot leak.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from mailhook.outbound.sandbox import SENT_REPLY_ACTIONS
from mailhook.store.mailboxes import (
    ActivityPage,
    ConfigPatch,
    ConnectionPatch,
    MailboxCounts,
)
from mailhook.store.models import Activity, Mailbox
from mailhook.store.persona_history import PersonaVersion
from mailhook.store.servers import ExternalAccount

# --- requests -----------------------------------------------------------------------------------

_PATCH_FIELDS = frozenset(field.name for field in dataclasses.fields(ConfigPatch))


class ConfigFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Configuration a mailbox can be created with and changed later; all optional."""

    display_name: str | UnsetType = UNSET
    persona: str | UnsetType = UNSET
    tone: str | UnsetType = UNSET
    rules: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET
    triggers: list[str] | UnsetType = UNSET
    mode: str | UnsetType = UNSET
    #: A JSON array of ``{name, description, url}``, or the URL of a manifest holding one.
    documents: list[Any] | str | UnsetType = UNSET
    thread_depth: int | UnsetType = UNSET
    max_output_tokens: int | UnsetType = UNSET
    reply_all: bool | UnsetType = UNSET
    #: ``mailhook`` (the built-in model answers) or ``api`` (the owner's agent, docs/agent-api.md).
    answered_by: str | UnsetType = UNSET
    #: The mailbox's own model (docs/agent.md); ``llm_api_key`` is write-only.
    llm_provider: str | UnsetType = UNSET
    llm_base_url: str | UnsetType = UNSET
    llm_model: str | UnsetType = UNSET
    llm_api_key: str | UnsetType = UNSET

    def patch(self) -> ConfigPatch:
        """The configuration fields that were sent, as the service's patch."""
        sent = {name: getattr(self, name) for name in self.__struct_fields__ if name in _PATCH_FIELDS}
        return ConfigPatch(**{name: value for name, value in sent.items() if value is not UNSET})


class ConfigUpdate(ConfigFields, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /mailboxes/{id}``."""

    poll_interval_minutes: int | UnsetType = UNSET


class HostedCreate(ConfigFields, kw_only=True, forbid_unknown_fields=True, tag_field="kind", tag="hosted"):
    """``{"kind": "hosted", "handle": ...}``: an address on the agent domain."""

    handle: str


class ExternalCreate(
    ConfigFields, kw_only=True, forbid_unknown_fields=True, tag_field="kind", tag="external"
):
    """``{"kind": "external", ...}``: an existing mailbox reached over IMAP and SMTP."""

    address: str
    imap_host: str
    imap_port: int = 993
    smtp_host: str
    smtp_port: int = 465
    login: str
    password: str
    poll_interval_minutes: int = 0

    def account(self) -> ExternalAccount:
        """The connection and credentials."""
        return ExternalAccount.of(self)


class ConnectionUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /mailboxes/{id}/connection``: an external mailbox's servers and credentials."""

    imap_host: str | UnsetType = UNSET
    imap_port: int | UnsetType = UNSET
    smtp_host: str | UnsetType = UNSET
    smtp_port: int | UnsetType = UNSET
    login: str | UnsetType = UNSET
    #: Write-only: sealed, never returned.
    password: str | UnsetType = UNSET

    def patch(self) -> ConnectionPatch:
        """The fields that were sent, as the service's patch."""
        sent = {name: getattr(self, name) for name in self.__struct_fields__}
        return ConnectionPatch(**{name: value for name, value in sent.items() if value is not UNSET})


class StatusChange(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /mailboxes/{id}/status``: what an owner may ask for."""

    status: Literal["active", "inactive"]


# --- responses ----------------------------------------------------------------------------------


@dataclass
class Server:
    """Where an external mailbox is reached."""

    host: str
    port: int


@dataclass
class MailboxOut:
    """A mailbox as the API shows it: no password, no login, no sealed value."""

    id: int
    kind: str
    address: str
    display_name: str
    status: str
    status_reason: str
    mode: str
    persona: str
    tone: str
    rules: str
    signature: str
    triggers: list[str]
    documents: list[dict[str, str]] | str
    thread_depth: int
    max_output_tokens: int
    reply_all: bool
    poll_interval_minutes: int
    answered_by: str
    has_credentials: bool
    llm_provider: str
    llm_base_url: str
    llm_model: str
    has_llm_api_key: bool
    imap: Server | None
    smtp: Server | None
    created_at: datetime
    updated_at: datetime


def mailbox_out(row: Mailbox) -> MailboxOut:
    """The public view of a mailbox row."""
    external = row.kind == "external"
    documents: list[dict[str, str]] | str = list(row.documents)
    if len(row.documents) == 1 and set(row.documents[0]) == {"manifest"}:
        documents = row.documents[0]["manifest"]
    return MailboxOut(
        id=row.id,
        kind=row.kind,
        address=row.address,
        display_name=row.display_name,
        status=row.status,
        status_reason=row.status_reason,
        mode=row.mode,
        persona=row.persona,
        tone=row.tone,
        rules=row.rules,
        signature=row.signature,
        triggers=list(row.triggers),
        documents=documents,
        thread_depth=row.thread_depth,
        max_output_tokens=row.max_output_tokens,
        reply_all=row.reply_all,
        poll_interval_minutes=row.poll_interval_minutes,
        answered_by=row.answered_by,
        has_credentials=row.password_sealed is not None,
        llm_provider=row.llm_provider,
        llm_base_url=row.llm_base_url,
        llm_model=row.llm_model,
        has_llm_api_key=row.llm_api_key_sealed is not None,
        imap=Server(row.imap_host, row.imap_port) if external else None,
        smtp=Server(row.smtp_host, row.smtp_port) if external else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass
class PersonaVersionOut:
    """One committed persona (``GET .../persona/history``)."""

    commit: str
    author: str
    time: datetime
    chars: int


def version_out(version: PersonaVersion) -> PersonaVersionOut:
    """The public view of a history entry."""
    return PersonaVersionOut(version.commit, version.author, version.time, version.chars)


@dataclass
class PersonaText:
    """The persona at one commit."""

    commit: str
    persona: str


@dataclass
class ActivityItem:
    """One activity row: metadata only, never content."""

    id: int
    action: str
    recipient: str
    reason: str
    message_id_hash: str | None
    created_at: datetime
    #: The reply's id in the sandbox outbox (``GET /api/v1/outbox/{id}`` shows its text) when
    #: this row's reply is kept there; null otherwise (a delivered reply's text is not kept).
    reply_outbox_id: int | None = None


@dataclass
class ActivityPageOut:
    """``{items, total, page, size, pages}``."""

    items: list[ActivityItem]
    total: int
    page: int
    size: int
    pages: int


def activity_page_out(page: ActivityPage, outbox: Mapping[int, int] | None = None) -> ActivityPageOut:
    """The public view of an activity page; ``outbox`` maps job ids to outbox message ids."""
    outbox = outbox or {}
    return ActivityPageOut(
        items=[_activity_item(row, outbox) for row in page.items],
        total=page.total,
        page=page.page,
        size=page.size,
        pages=page.pages,
    )


def _activity_item(row: Activity, outbox: Mapping[int, int]) -> ActivityItem:
    reply = outbox.get(row.job_id) if row.job_id is not None and row.action in SENT_REPLY_ACTIONS else None
    return ActivityItem(
        row.id, row.action, row.recipient, row.reason, row.message_id_hash, row.created_at, reply
    )


@dataclass
class MailboxStatsOut:
    """Counts of one mailbox."""

    id: int
    address: str
    status: str
    handled: int
    escalated: int
    counts: dict[str, int]


@dataclass
class StatsOut:
    """``GET /stats``: the caller's totals, per mailbox, and credits (null: not counted)."""

    handled: int
    escalated: int
    remaining_credits: int | None
    mailboxes: list[MailboxStatsOut]


def stats_out(counts: list[MailboxCounts], remaining_credits: int | None) -> StatsOut:
    """Totals over every mailbox of the caller."""
    mailboxes = [
        MailboxStatsOut(c.mailbox_id, c.address, c.status, c.handled, c.escalated, c.counts) for c in counts
    ]
    return StatsOut(
        handled=sum(m.handled for m in mailboxes),
        escalated=sum(m.escalated for m in mailboxes),
        remaining_credits=remaining_credits,
        mailboxes=mailboxes,
    )
