"""Everything one decision needs, gathered the same way for real mail and for persona tests.

:class:`RequestBuilder` turns a mailbox row and a parsed message into a
:class:`~mailhook.agent.decision.DecisionRequest`: the mailbox brief, PDF text, and, when the
mailbox lists reference documents, the ones a short second model call picks, fetched fresh
(``agent.documents``, ``net.fetch``: SSRF-safe, size cap, deadline, ``User-Agent: mailhook/<v>``).
A mailbox without documents costs exactly one model call (the decision). Documents are an aid,
never a reason to fail: a manifest or document that cannot be fetched is logged by name and the
decision goes on without it. Only the model being down (``ProviderUnavailable``) propagates, since
the decision call to the same provider would fail too and the job is retried as a whole.
"""

from __future__ import annotations

from typing import Any

from mailhook.agent.decision import DecisionRequest, MailboxBrief
from mailhook.agent.documents import (
    DocumentRef,
    fetch_selected,
    load_manifest,
    parse_documents,
    parse_selection,
)
from mailhook.agent.model import Model
from mailhook.agent.pdf import attachments_as_text_async
from mailhook.agent.prompts import selection_prompt
from mailhook.errors import MailhookError
from mailhook.logs import get_logger
from mailhook.mail.parse import ParsedMessage
from mailhook.settings import Settings
from mailhook.store.models import Mailbox

log = get_logger(__name__)

Documents = tuple[tuple[str, str], ...]


def brief_of(mailbox: Mailbox) -> MailboxBrief:
    """What of the mailbox's configuration the model sees."""
    return MailboxBrief(
        address=mailbox.address,
        persona=mailbox.persona,
        tone=mailbox.tone,
        rules=mailbox.rules,
        triggers=tuple(mailbox.triggers or ()),
        max_output_tokens=mailbox.max_output_tokens,
    )


class RequestBuilder:
    """Builds decision requests; holds the fetch policy from the settings."""

    def __init__(self, settings: Settings, **fetch_overrides: Any) -> None:
        agent = settings.agent
        self._fetch: dict[str, Any] = {
            "allow_hosts": [h.strip() for h in agent.fetch_allow_hosts.split(",") if h.strip()],
            "max_bytes": agent.fetch_max_bytes,
            "timeout": agent.fetch_timeout_seconds,
            **fetch_overrides,
        }

    async def build(self, mailbox: Mailbox, message: ParsedMessage, model: Model | None) -> DecisionRequest:
        """The request for ``message``; ``model`` picks documents (None: no documents)."""
        # PDF text is extracted off the event loop, with time and size bounds (agent/pdf.py).
        attachments = await attachments_as_text_async(message.attachments)
        documents = await self.documents_for(mailbox, message, model) if model is not None else ()
        return DecisionRequest(
            mailbox=brief_of(mailbox), message=message, attachments_text=attachments, documents=documents
        )

    async def documents_for(self, mailbox: Mailbox, message: ParsedMessage, model: Model) -> Documents:
        """The documents the model picks for ``message``, fetched now; () when there are none."""
        if not mailbox.documents:
            return ()
        available = await self._document_list(mailbox)
        if not available:
            return ()
        answer = await model.complete(selection_prompt(available, message))
        chosen = [] if answer.unfinished else parse_selection(answer.text, available)
        log.info("documents_selected", mailbox_id=mailbox.id, offered=len(available), chosen=len(chosen))
        if not chosen:
            return ()
        try:
            fetched = await fetch_selected(chosen, **self._fetch)
        except Exception as exc:  # a bug in one fetch must not cost the reply
            log.warning("documents_fetch_failed", mailbox_id=mailbox.id, error=type(exc).__name__)
            return ()
        return tuple((doc.name, text) for doc, text in fetched)

    async def _document_list(self, mailbox: Mailbox) -> list[DocumentRef]:
        stored: list[Any] = list(mailbox.documents)
        try:
            if len(stored) == 1 and isinstance(stored[0], dict) and set(stored[0]) == {"manifest"}:
                return await load_manifest(str(stored[0]["manifest"]), **self._fetch)
            return parse_documents(stored)
        except MailhookError as exc:  # refused, unavailable or invalid: answer without documents
            log.warning("document_list_unavailable", mailbox_id=mailbox.id, error=type(exc).__name__)
            return []
