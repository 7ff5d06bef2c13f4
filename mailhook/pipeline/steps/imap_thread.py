"""Step 5b, thread from IMAP: for an external mailbox, the earlier messages of the conversation
(up to the mailbox's ``thread_depth``) are read from the account's INBOX and Sent folder and given
to the model as delimited data, like the new message (doors/imap/thread.py).

A store that cannot be read costs the model its context, never the reply: the error is logged
(type only) and the run goes on with the new message alone.
"""

from __future__ import annotations

import dataclasses

from mailhook.doors.imap.accounts import ExternalAccounts
from mailhook.doors.imap.thread import ThreadReader
from mailhook.logs import get_logger
from mailhook.pipeline.context import MessageContext

log = get_logger(__name__)


class ImapThreadStep:
    """Fill ``ctx.request.thread`` for external mailboxes."""

    name = "imap_thread"

    def __init__(self, accounts: ExternalAccounts, reader: ThreadReader) -> None:
        self._accounts = accounts
        self._reader = reader

    async def process(self, ctx: MessageContext) -> None:
        """No-op for hosted mailboxes, a depth of 0, or a message outside any thread."""
        mailbox, request = ctx.need_mailbox(), ctx.request
        if mailbox.kind != "external" or request is None or mailbox.thread_depth <= 0 or request.thread:
            return
        try:
            account = await self._accounts.get(mailbox.id)
            if account is None:
                return
            thread = await self._reader.earlier(account, ctx.need_message(), mailbox.thread_depth)
        except Exception as exc:
            log.warning("imap_thread_unavailable", mailbox=mailbox.id, error=type(exc).__name__)
            return
        if thread:
            ctx.request = dataclasses.replace(request, thread=thread)
