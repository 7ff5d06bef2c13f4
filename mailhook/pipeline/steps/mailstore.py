"""After-step, mail store: for external mailboxes, what the owner sees in their own mail client.

- a reply sent in this run: its Sent copy was filed by the account-SMTP transport right after
  the send (outbound/routing.py, also for retries and approved replies); its result is noted here;
- a reply kept in draft mode → APPENDed to Drafts with ``\\Draft``;
- an escalation of a message that came over IMAP → ``\\Flagged $Important`` on the original.

Every result goes into the activity detail. A failure is logged and noted there, never raised:
the reply is already sent or kept, and a retried job must not send it again (invariant 2). A
draft of a job resumed after a crash is not filed again (the composed reply is gone by then).
"""

from __future__ import annotations

from mailhook.doors.imap.accounts import ExternalAccounts
from mailhook.doors.imap.state import ImapStates
from mailhook.doors.imap.store import MailStore
from mailhook.logs import get_logger
from mailhook.outbound.routing import last_sent_copy
from mailhook.pipeline.context import MessageContext
from mailhook.store.activity import ActivityAction
from mailhook.store.models import OutgoingKind
from mailhook.store.replies import ReplyStore

log = get_logger(__name__)


class MailStoreStep:
    """Note Sent copies, file drafts, flag escalated originals, in external mailboxes."""

    name = "mail_store"

    def __init__(
        self, accounts: ExternalAccounts, states: ImapStates, store: MailStore, replies: ReplyStore
    ) -> None:
        self._accounts = accounts
        self._states = states
        self._store = store
        self._replies = replies

    async def process(self, ctx: MessageContext) -> None:
        """No-op for hosted mailboxes and for outcomes with nothing to file."""
        outcome, mailbox = ctx.outcome, ctx.mailbox
        if outcome is None or mailbox is None or mailbox.kind != "external":
            return
        action = outcome.action
        try:
            if action is ActivityAction.REPLIED:
                await self._note_sent_copy(ctx, outcome.detail)
            elif action is ActivityAction.DRAFTED and ctx.reply_data:
                account = await self._accounts.get(mailbox.id)
                if account is not None:
                    outcome.detail["draft"] = await self._store.file_draft(account, ctx.reply_data)
            elif action is ActivityAction.ESCALATED and ctx.job.source == "imap":
                account = await self._accounts.get(mailbox.id)
                if account is not None:
                    where = await self._states.message_uid(ctx.job.id)
                    message_id = ctx.message.message_id if ctx.message is not None else None
                    outcome.detail["flagged"] = await self._store.flag_original(account, where, message_id)
        except Exception as exc:  # the reply is done either way; never redo it for a copy
            log.warning(
                "mail_store_failed", mailbox=mailbox.id, action=action.value, error=type(exc).__name__
            )
            outcome.detail["mail_store_error"] = type(exc).__name__

    async def _note_sent_copy(self, ctx: MessageContext, detail: dict[str, object]) -> None:
        copied = last_sent_copy.get()
        if copied is None:
            return
        record = await self._replies.for_job(ctx.job.id, OutgoingKind.REPLY)
        if record is None or record.id != copied[0] or not copied[1]:
            return  # sent by an earlier run, or through another transport
        if copied[1].startswith("error: "):
            detail["mail_store_error"] = copied[1].removeprefix("error: ")
        else:
            detail["sent_copy"] = copied[1]
