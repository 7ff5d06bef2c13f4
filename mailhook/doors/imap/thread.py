"""Thread context from an external mailbox (issue #4): the earlier messages of a conversation,
found in the account's INBOX and Sent folder, for the model to read as delimited data.

Messages are found by the ids that tie the new message to its thread (References, In-Reply-To;
RFC 5322 §3.6.4) with ``UID SEARCH HEADER Message-ID``; a reply without those headers falls back
to its subject (same subject once reply prefixes are removed, ASCII subjects only). At most
``thread_depth`` messages, each at most :data:`MAX_MESSAGE_BYTES`, text only, oldest first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.doors.imap.client import ImapSession
from mailhook.doors.imap.store import MailStore, quoted
from mailhook.mail.parse import ParsedMessage, parse_message
from mailhook.mail.thread import reply_subject, thread_ids

#: Earlier messages larger than this are left out of the context (their text would not fit).
MAX_MESSAGE_BYTES = 1024 * 1024
#: Most ids searched for at once (the newest of a long References chain).
MAX_IDS = 20


def search_criteria(message: ParsedMessage) -> tuple[list[str], bool] | None:
    """IMAP SEARCH keys for the thread of ``message`` and whether they are ids (else subject)."""
    ids = [i for i in thread_ids(message) if i != message.message_id][-MAX_IDS:]
    if ids:
        keys = [f"HEADER Message-ID {quoted(i)}" for i in ids]
        # Prefix notation (RFC 3501 §6.4.4): "OR OR a b c" is (a OR b) OR c.
        return ["OR " * (len(keys) - 1) + " ".join(keys)], True
    base = _base_subject(message.subject)
    if base and base != message.subject.strip() and base.isascii():
        return [f"SUBJECT {quoted(base)}"], False
    return None


def _base_subject(subject: str) -> str:
    return reply_subject(subject).removeprefix("Re:").strip()


class ThreadReader:
    """Reads the earlier messages of a thread from an account's store."""

    def __init__(self, store: MailStore) -> None:
        self._store = store

    async def earlier(
        self, account: OpenedAccount, message: ParsedMessage, depth: int
    ) -> tuple[ParsedMessage, ...]:
        """Up to ``depth`` earlier messages of the thread, oldest first."""
        criteria = search_criteria(message)
        if depth <= 0 or criteria is None:
            return ()
        keys, by_id = criteria
        wanted_ids = set(thread_ids(message)) - {message.message_id}
        imap = await self._store.open(account)
        try:
            folders = ["INBOX", await imap.special_folder("\\Sent", "Sent")]
            found: dict[str, ParsedMessage] = {}
            for folder in dict.fromkeys(folders):
                for earlier in await _search(imap, folder, keys, depth):
                    same = (
                        earlier.message_id in wanted_ids
                        if by_id
                        else _base_subject(earlier.subject) == _base_subject(message.subject)
                    )
                    if same and earlier.message_id and earlier.message_id != message.message_id:
                        found.setdefault(earlier.message_id, earlier)
        finally:
            await imap.logout()
        oldest_first = sorted(found.values(), key=_sort_key)
        return tuple(oldest_first[-depth:])


async def _search(imap: ImapSession, folder: str, keys: list[str], depth: int) -> list[ParsedMessage]:
    try:
        await imap.select(folder)
    except Exception:  # no Sent folder on this account: nothing to read there
        return []
    uids = (await imap.uid_search(*keys))[-depth:]
    if not uids:
        return []
    sizes = await imap.sizes(",".join(map(str, uids)))
    parsed = []
    for uid in uids:
        if sizes.get(uid, MAX_MESSAGE_BYTES + 1) > MAX_MESSAGE_BYTES:
            continue
        raw = await imap.fetch_raw(uid)
        if raw is not None:
            parsed.append(parse_message(raw))
    return parsed


def _sort_key(message: ParsedMessage) -> datetime:
    date = message.date or datetime.min.replace(tzinfo=UTC)
    return date if date.tzinfo else date.replace(tzinfo=UTC)
