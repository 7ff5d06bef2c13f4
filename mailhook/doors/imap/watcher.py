"""One task per leased account: connect, sync, then IDLE or poll, and back off on failures.

- ``poll_interval_minutes == 0`` and the server has IDLE (RFC 2177): IDLE, re-issued every
  ``imap.idle_renew_seconds`` (the RFC asks for less than 29 minutes), a sync after each wake-up.
- Otherwise poll every ``poll_interval_minutes`` (a push mailbox on a server without IDLE polls
  every minute). Up to the IDLE renewal time the connection stays open between polls (NOOP, then
  sync); longer intervals log out and reconnect.
- A refused login pauses the mailbox with the server's reason and keeps trying, with backoff; the
  first login that works wakes it again. A host that leads to a private address (not in
  ``imap.allow_hosts``) pauses it the same way, with the reason, and is checked again with backoff
  (a DNS change or a corrected host in the mailbox's settings brings it back). Connection
  trouble backs off exponentially up to ``imap.backoff_max_seconds``. The watcher never dies of
  an error: only cancellation ends it.
"""

from __future__ import annotations

import asyncio

from mailhook.backoff import jittered
from mailhook.crypto import SealBroken
from mailhook.doors.imap.accounts import ExternalAccounts, OpenedAccount
from mailhook.doors.imap.client import (
    ImapCommandFailed,
    ImapHostRefused,
    ImapLoginFailed,
    ImapSession,
    ImapUnavailable,
    ServerAccess,
)
from mailhook.doors.imap.state import HOST_REFUSED, ImapStates
from mailhook.doors.imap.sync import SyncLimits, sync_inbox
from mailhook.errors import TemporaryFailure
from mailhook.logs import get_logger
from mailhook.settings import ImapSettings
from mailhook.spool.spool import Spool
from mailhook.store.db import DB_UNAVAILABLE

log = get_logger(__name__)

_RETRYABLE = (
    ImapUnavailable,
    ImapCommandFailed,
    TemporaryFailure,
    SealBroken,
    UnicodeDecodeError,
    *DB_UNAVAILABLE,
)


class Watcher:
    """Watches one account until cancelled."""

    def __init__(
        self,
        mailbox_id: int,
        *,
        accounts: ExternalAccounts,
        spool: Spool,
        states: ImapStates,
        settings: ImapSettings,
        limits: SyncLimits,
        gate: asyncio.Semaphore,
    ) -> None:
        self.mailbox_id = mailbox_id
        self._accounts = accounts
        self._spool = spool
        self._states = states
        self._settings = settings
        self._limits = limits
        self._gate = gate
        self._access = ServerAccess.from_settings(settings)
        self.failures = 0

    async def run(self) -> None:
        """Rounds of connect-sync-wait, with a pause between them."""
        while True:
            try:
                pause = await self._round()
            except ImapLoginFailed as exc:
                pause = await self._failed(f"login refused: {exc}")
                if await self._states.pause_for_login(self.mailbox_id, str(exc)):
                    log.warning("imap_login_failed", mailbox=self.mailbox_id, paused=True)
            except ImapHostRefused as exc:
                pause = await self._failed(f"host refused: {exc}")
                if await self._states.pause_for_login(self.mailbox_id, str(exc), prefix=HOST_REFUSED):
                    log.warning("imap_host_refused", mailbox=self.mailbox_id, paused=True)
            except _RETRYABLE as exc:
                pause = await self._failed(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a bug must not end the watch: log it and back off
                log.exception("imap_watcher_crashed", mailbox=self.mailbox_id, error=type(exc).__name__)
                pause = await self._failed(type(exc).__name__)
            await asyncio.sleep(pause)

    async def _failed(self, error: str) -> float:
        self.failures += 1
        log.warning("imap_account_failed", mailbox=self.mailbox_id, error=error, failures=self.failures)
        try:
            await self._states.failed(self.mailbox_id, error)
        except Exception as exc:  # the database may be what failed; the backoff still applies
            log.warning("imap_state_not_saved", mailbox=self.mailbox_id, error=type(exc).__name__)
        return self.backoff()

    def backoff(self) -> float:
        """Exponential backoff with jitter on the upper half, capped."""
        settings = self._settings
        delay = min(settings.backoff_seconds * 2.0 ** max(0, self.failures - 1), settings.backoff_max_seconds)
        return jittered(delay)

    def _interval(self, account: OpenedAccount) -> float:
        minutes = account.poll_interval_minutes or 1
        return minutes * self._settings.poll_unit_seconds

    async def _round(self) -> float:
        """One connection's life; returns how long to wait before the next one."""
        account = await self._accounts.get(self.mailbox_id)
        if account is None:  # deleted meanwhile: the door stops this watcher at its next tick
            return self._settings.lease_seconds
        async with self._gate:
            imap = await ImapSession.open(
                account.imap_host, account.imap_port, account.login, account.password, access=self._access
            )
        try:
            if account.paused_for_login and await self._states.wake_after_login(self.mailbox_id):
                log.info("imap_login_works_again", mailbox=self.mailbox_id)
            return await self._watch(imap, account)
        finally:
            await imap.logout()

    async def _watch(self, imap: ImapSession, account: OpenedAccount) -> float:
        push = account.poll_interval_minutes == 0 and imap.has_idle
        interval = self._interval(account)
        while True:
            async with self._gate:
                spooled = await sync_inbox(imap, account, self._spool, self._states, self._limits)
            if self.failures:  # one write to clear the error, not one per sync (SQLite has one writer)
                await self._states.synced(self.mailbox_id)
                self.failures = 0
            if spooled:
                log.info("imap_synced", mailbox=self.mailbox_id, new=spooled)
            if push:
                await imap.wait_for_news(self._settings.idle_renew_seconds)
            elif interval > self._settings.idle_renew_seconds:
                return interval  # log out; a connection idle that long would be dropped anyway
            else:
                await asyncio.sleep(interval)
                await imap.noop()
