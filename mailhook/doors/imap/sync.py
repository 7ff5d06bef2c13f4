"""One sync of an account's INBOX: every message past the cursor goes to the spool, in UID order,
and the cursor follows each spool commit.

First connection, or a changed UIDVALIDITY (RFC 3501 §2.3.1.1: every old UID is void): the
unread messages of the last ``imap.backfill_days`` are fetched (a new mailbox does not answer
years of history), then the cursor is set to the top of the folder. Messages already spooled
are recognised by the spool's dedup (same Message-ID or content), so a re-fetch is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.doors.imap.client import ImapSession
from mailhook.doors.imap.state import ImapStates
from mailhook.doors.inbound import Inbound
from mailhook.logs import get_logger
from mailhook.spool.spool import Spool
from mailhook.store.models import utcnow

log = get_logger(__name__)

_END_OF_HEADER = b"\r\n\r\n"
MAX_PATH = 256


@dataclass(frozen=True)
class SyncLimits:
    """Bounds of one sync."""

    backfill_days: int
    max_message_bytes: int


def envelope_sender_of(raw: bytes) -> str:
    """The message's reverse-path: its Return-Path (set by the delivering MTA, RFC 5321 §4.4;
    ``<>`` for bounces), or its From address when the server kept none."""
    end = raw.find(_END_OF_HEADER)
    head = raw[: end + 4] if end >= 0 else raw[:65536]
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
        return_path = headers.get("Return-Path")
        field = return_path if return_path is not None else headers.get("From", "")
        address = parseaddr(str(field))[1]
    except Exception:  # a broken header is the pipeline's problem, not the door's
        return ""
    # RFC 5321 §4.5.3.1.3: a path is at most 256 octets; anything else is no usable sender.
    return address if "@" in address and len(address) <= MAX_PATH else ""


async def sync_inbox(
    imap: ImapSession, account: OpenedAccount, spool: Spool, states: ImapStates, limits: SyncLimits
) -> int:
    """Spool every new message; returns how many were new to the spool."""
    selected = await imap.select("INBOX")
    cursor = await states.cursor(account.mailbox_id)
    spooled = 0
    last_uid = cursor.last_uid
    if cursor.uidvalidity != selected.uidvalidity:
        if cursor.uidvalidity is not None:
            log.warning("imap_uidvalidity_changed", mailbox=account.mailbox_id)
        top = (selected.uidnext - 1) if selected.uidnext else max(await imap.uid_search("ALL"), default=0)
        backfilled: list[tuple[int, int]] = []
        for uid in await _backfill(imap, limits.backfill_days):
            job_id = await _spool(imap, account, spool, uid) if uid <= top else None
            if job_id is not None:
                backfilled.append((uid, abs(job_id)))
                spooled += job_id > 0
        # Only now is the new UIDVALIDITY written: a crash during the backfill repeats it.
        await states.reset(account.mailbox_id, selected.uidvalidity, top)
        for uid, job_id in backfilled:
            await states.remember(account.mailbox_id, selected.uidvalidity, uid, job_id)
        last_uid = top
    sizes = await imap.sizes_from(last_uid + 1)
    for uid in sorted(u for u in sizes if u > last_uid):
        job_id = None
        if sizes[uid] > limits.max_message_bytes:
            log.warning("imap_message_too_large", mailbox=account.mailbox_id, uid=uid, size=sizes[uid])
        else:
            job_id = await _spool(imap, account, spool, uid)
            spooled += job_id is not None and job_id > 0
        await states.advance(account.mailbox_id, selected.uidvalidity, uid)
        if job_id is not None:
            await states.remember(account.mailbox_id, selected.uidvalidity, uid, abs(job_id))
    return spooled


async def _backfill(imap: ImapSession, days: int) -> list[int]:
    if days <= 0:
        return []
    since = (utcnow() - timedelta(days=days)).strftime("%d-%b-%Y")
    return await imap.uid_search("UNSEEN", "SINCE", since)


async def _spool(imap: ImapSession, account: OpenedAccount, spool: Spool, uid: int) -> int | None:
    """Fetch and enqueue one message: its job id, negative when the spool already had it, or
    None when the message vanished (expunged meanwhile). Raises when the spool is unavailable,
    so the cursor stays where it is."""
    raw = await imap.fetch_raw(uid)
    if raw is None:
        return None
    inbound = Inbound("imap", envelope_sender_of(raw), (account.address,), raw)
    accepted = (await spool.enqueue(inbound, [(account.address, account.mailbox_id)]))[0]
    log.info(
        "accepted", source="imap", size=len(raw), jobs=[accepted.job_id], duplicates=int(accepted.duplicate)
    )
    return -accepted.job_id if accepted.duplicate else accepted.job_id
