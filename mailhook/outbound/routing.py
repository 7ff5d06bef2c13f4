"""Per-mailbox choice of the way out: an external mailbox sends through its own account SMTP,
every other mailbox through the configured transport (relay or sandbox).

Mail from an external address must leave through that address's provider: only it passes the
domain's SPF/DKIM/DMARC. Like any mail client, mailhook then files a copy of what it sent in the
account's Sent folder (IMAP APPEND, doors/imap/store.py), so the owner sees the conversation in
their own client; providers that do that themselves (Gmail) are skipped. The copy is best effort:
a failure is logged and reported through :data:`last_sent_copy`, never raised, because the
message is sent and raising would make it look unsent (invariant 2).
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.doors.imap.accounts import ExternalAccounts, OpenedAccount
from mailhook.doors.imap.store import MailStore
from mailhook.errors import RelayRejected
from mailhook.logs import get_logger
from mailhook.outbound.account_smtp import AccountSmtp
from mailhook.outbound.transport import OutgoingMessage, Transport
from mailhook.store.models import Mailbox, Reply

log = get_logger(__name__)

#: ``(reply id, how its Sent copy went)`` for the last message this task sent through an account
#: SMTP: the folder name, ``filed by the provider``, or ``error: <type>``. The pipeline's
#: ``mail_store`` step puts it in the activity detail (same task, so the same context).
last_sent_copy: ContextVar[tuple[int, str] | None] = ContextVar("mailhook_last_sent_copy", default=None)


class RoutingTransport:
    """A :class:`Transport` that routes by the sending mailbox."""

    name = "routing"

    def __init__(
        self,
        default: Transport,
        accounts: ExternalAccounts,
        account_smtp: AccountSmtp,
        sessions: async_sessionmaker[AsyncSession],
        store: MailStore | None = None,
    ) -> None:
        self.default = default
        self._accounts = accounts
        self._account_smtp = account_smtp
        self._sessions = sessions
        self._store = store

    async def account_for(self, mailbox_id: int) -> OpenedAccount | None:
        """The external account a mailbox sends through, or None for the default transport.

        An external mailbox without usable SMTP settings (deleted, credentials erased) is a
        permanent refusal: its mail must never leave through the installation's relay instead.
        """
        async with self._sessions() as session:
            kind = await session.scalar(select(Mailbox.kind).where(Mailbox.id == mailbox_id))
        if kind != "external":
            return None
        account = await self._accounts.get(mailbox_id)
        if account is None or not account.smtp_host:
            raise RelayRejected("the external mailbox has no usable SMTP account")
        return account

    async def send(self, message: OutgoingMessage) -> None:
        """Through the account SMTP for external mailboxes, else the default transport."""
        account = await self.account_for(message.mailbox_id)
        if account is None:
            await self.default.send(message)
            return
        await self._account_smtp.send(account, message)
        log.info("sent_via_account_smtp", mailbox=message.mailbox_id, reply=message.reply_id)
        last_sent_copy.set((message.reply_id, await self._file_copy(account, message)))

    async def _file_copy(self, account: OpenedAccount, message: OutgoingMessage) -> str:
        if self._store is None:
            return ""
        if account.files_sent_itself:
            return "filed by the provider"
        try:
            return await self._store.file_sent(account, message.data)
        except Exception as exc:  # sent is sent: a lost copy must not make it look unsent
            log.warning("sent_copy_failed", mailbox=message.mailbox_id, error=type(exc).__name__)
            return f"error: {type(exc).__name__}"

    async def was_delivered(self, reply_id: int) -> bool | None:
        """The default transport's answer; an account SMTP cannot be asked (None)."""
        async with self._sessions() as session:
            kind = await session.scalar(
                select(Mailbox.kind).join(Reply, Reply.mailbox_id == Mailbox.id).where(Reply.id == reply_id)
            )
        if kind == "external":
            return None
        return await self.default.was_delivered(reply_id)
