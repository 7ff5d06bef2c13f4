"""The IMAP door: lease accounts, run one :class:`Watcher` per leased account, stop them cleanly.

Every third of ``imap.lease_seconds`` the door (1) lists the accounts that should be watched,
(2) stops watchers whose account went away (deleted, paused by its owner) or whose connection
settings changed (a fixed password restarts the watcher at once), (3) renews its leases and
stops watchers whose lease another node took, and (4) claims free or expired leases up to
``imap.max_accounts``. At shutdown it gives its leases back, so another node can take over
without waiting for them to expire.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailhook.crypto import Sealer
from mailhook.doors.imap.accounts import ExternalAccounts
from mailhook.doors.imap.leases import Leases
from mailhook.doors.imap.state import ImapStates
from mailhook.doors.imap.sync import SyncLimits
from mailhook.doors.imap.watcher import Watcher
from mailhook.logs import get_logger
from mailhook.settings import ImapSettings
from mailhook.spool.spool import Spool

log = get_logger(__name__)


class ImapDoor:
    """Watches the external accounts this node holds leases on."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        spool: Spool,
        settings: ImapSettings,
        *,
        max_message_bytes: int,
        node: str | None = None,
    ) -> None:
        self._settings = settings
        self._spool = spool
        self.accounts = ExternalAccounts(sessions, sealer)
        self.states = ImapStates(sessions)
        # Leases carry the spool's node name unless told otherwise (tests run two nodes in one process).
        self.leases = Leases(sessions, node or spool.node, settings.lease_seconds)
        self._limits = SyncLimits(settings.backfill_days, max_message_bytes)
        self._gate = asyncio.Semaphore(max(1, settings.max_concurrent_syncs))
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._fingerprints: dict[int, tuple[object, ...]] = {}
        self._manager: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def watching(self) -> frozenset[int]:
        """Mailbox ids this node watches now."""
        return frozenset(self._watchers)

    async def start(self) -> None:
        """Start the lease manager (it claims accounts right away)."""
        self._manager = asyncio.create_task(self._manage(), name="mailhook-imap-door")

    def poke(self) -> None:
        """Look for new or changed accounts now instead of at the next tick."""
        self._wake.set()

    async def _manage(self) -> None:
        period = max(0.2, self._settings.lease_seconds / 3)
        while True:
            try:
                await self.tick()
            except Exception as exc:  # database down: keep the watchers, try again next tick
                log.warning("imap_lease_tick_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()

    async def tick(self) -> None:
        """One round of the lease protocol (see the module docstring)."""
        wanted = await self.leases.watchable()
        gone = [m for m in self._watchers if m not in wanted]
        changed = [
            m for m in self._watchers if m in wanted and wanted[m].fingerprint != self._fingerprints[m]
        ]
        crashed = [m for m, task in self._watchers.items() if task.done()]
        await self._stop_watchers([*gone, *changed, *crashed])
        await self.leases.release(gone)
        kept = await self.leases.renew(list(self._watchers))
        lost = [m for m in self._watchers if m not in kept]
        if lost:
            log.warning("imap_leases_lost", accounts=len(lost))
            await self._stop_watchers(lost)
        room = self._settings.max_accounts - len(self._watchers)
        candidates = [m for m in wanted if m not in self._watchers]
        for mailbox_id in await self.leases.claim(candidates, room):
            self._start_watcher(mailbox_id, wanted[mailbox_id].fingerprint)

    def _start_watcher(self, mailbox_id: int, fingerprint: tuple[object, ...]) -> None:
        watcher = Watcher(
            mailbox_id,
            accounts=self.accounts,
            spool=self._spool,
            states=self.states,
            settings=self._settings,
            limits=self._limits,
            gate=self._gate,
        )
        self._watchers[mailbox_id] = asyncio.create_task(watcher.run(), name=f"mailhook-imap-{mailbox_id}")
        self._fingerprints[mailbox_id] = fingerprint

    async def _stop_watchers(self, mailbox_ids: list[int]) -> None:
        tasks = [self._watchers.pop(m) for m in dict.fromkeys(mailbox_ids) if m in self._watchers]
        for mailbox_id in mailbox_ids:
            self._fingerprints.pop(mailbox_id, None)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._settings.timeout_seconds)

    async def stop(self) -> None:
        """Stop watching; give the leases back."""
        if self._manager is not None:
            self._manager.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._manager
            self._manager = None
        await self._stop_watchers(list(self._watchers))
        try:
            await self.leases.release()
        except Exception as exc:  # they expire by themselves
            log.warning("imap_lease_release_failed", error=type(exc).__name__)
