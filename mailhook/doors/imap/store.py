"""IMAP store operations on an external mailbox (issue #4): the Sent copy of a reply, the draft
in draft mode, and the flags on an escalated original.

- Sent / Drafts are found by their SPECIAL-USE attribute (RFC 6154 ``\\Sent``, ``\\Drafts``),
  falling back to the folder names ``Sent`` and ``Drafts``.
- A draft is APPENDed with the ``\\Draft`` flag (RFC 3501 §2.3.2); a Sent copy with ``\\Seen``.
- An escalated original gets ``\\Flagged $Important``: by the UID its job came from when the
  folder's UIDVALIDITY is unchanged, otherwise by searching its Message-ID.

Each operation opens its own short connection; a failure raises, and the caller decides (the
pipeline only logs it: a failed copy must never cause a second reply).
"""

from __future__ import annotations

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.doors.imap.client import ImapSession, ServerAccess
from mailhook.settings import ImapSettings

SENT_FLAGS = "\\Seen"
DRAFT_FLAGS = "\\Draft"
ESCALATION_FLAGS = "\\Flagged $Important"


class MailStore:
    """Talks to an account's IMAP store for the pipeline."""

    def __init__(self, settings: ImapSettings) -> None:
        self._access = ServerAccess.from_settings(settings)

    async def open(self, account: OpenedAccount) -> ImapSession:
        """A logged-in session on the account (the caller logs out)."""
        return await ImapSession.open(
            account.imap_host, account.imap_port, account.login, account.password, access=self._access
        )

    async def file_sent(self, account: OpenedAccount, data: bytes) -> str:
        """APPEND a sent reply to the Sent folder; returns the folder used."""
        return await self._append(account, "\\Sent", "Sent", data, SENT_FLAGS)

    async def file_draft(self, account: OpenedAccount, data: bytes) -> str:
        """APPEND a reply to the Drafts folder, flagged ``\\Draft``; returns the folder used."""
        return await self._append(account, "\\Drafts", "Drafts", data, DRAFT_FLAGS)

    async def _append(self, account: OpenedAccount, use: str, fallback: str, data: bytes, flags: str) -> str:
        imap = await self.open(account)
        try:
            folder = await imap.special_folder(use, fallback)
            await imap.append(folder, data, flags)
            return folder
        finally:
            await imap.logout()

    async def flag_original(
        self, account: OpenedAccount, where: tuple[int, int] | None, message_id: str | None
    ) -> int:
        """Flag the original message; returns how many messages were flagged."""
        imap = await self.open(account)
        try:
            selected = await imap.select("INBOX")
            if where is not None and where[0] == selected.uidvalidity:
                uids = [where[1]]
            elif message_id:
                uids = await imap.uid_search("HEADER", "Message-ID", quoted(message_id))
            else:
                uids = []
            for uid in uids:
                await imap.add_flags(uid, ESCALATION_FLAGS)
            return len(uids)
        finally:
            await imap.logout()


def quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3). CR, LF and NUL cannot be in one (they would end
    the command line), so they are dropped; backslash and double quote are escaped."""
    cleaned = "".join(ch for ch in text if ch not in "\r\n\x00")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'
