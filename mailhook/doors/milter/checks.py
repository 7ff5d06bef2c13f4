"""The milter's decisions: inbound threat score headers, and the outbound guard with the hold queue.

Direction is decided by the envelope sender: MAIL FROM an agent mailbox address (a mailbox in
the database, ``+tag`` included) is **outbound**: an agent submitting mail through the MTA
directly instead of through mailhook's API. Everything else is **inbound**.

* Inbound: the message is scored with the same inbound threat scorer the pipeline uses
  (:func:`mailhook.guard.inbound.score_inbound`) and gets ``X-Mailhook-Score``,
  ``X-Mailhook-Rules`` and ``X-Mailhook-Verdict``.
* Outbound: the outbound guard (the same configuration as the pipeline's, see
  :func:`mailhook.services.make_outbound_guard`) scans the message once for all envelope
  recipients, Bcc included. A high-severity finding in ``enforce`` mode holds it and writes an
  activity row: ``hold_action = quarantine`` asks the MTA to quarantine it (Postfix's hold
  queue), ``reject`` refuses it with ``550 5.7.1`` (for MTAs without a hold queue: Stalwart
  turns a quarantine into an ``X-Quarantine`` header and delivers). In ``observe`` mode it only
  adds ``X-Mailhook-Guard`` and logs. Medium findings add the header in both modes.

In both directions every inbound copy of a control header is deleted first. Logs and activity
rows carry rule ids, sizes and the queue id: never content (invariant 3).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from mailhook.errors import MalformedMessage
from mailhook.guard.inbound import score_inbound, verdict_for
from mailhook.guard.outbound import HIGH, OutboundGuard
from mailhook.logs import get_logger
from mailhook.mail.parse import message_id_of, parse_message
from mailhook.settings import GuardSettings
from mailhook.spool.spool import message_id_hash
from mailhook.store.activity import ActivityAction, ActivityLog
from mailhook.store.directory import Directory

from .verdict import (
    TRUNCATED_RULE,
    Collected,
    Verdict,
    control_header_deletions,
    guard_header,
    inbound_headers,
    quarantine_reason,
)

log = get_logger(__name__)

Mode = Literal["observe", "enforce"]
HoldAction = Literal["quarantine", "reject"]
MALFORMED_RULE = "milter.unparsable"
"""Listed when the message had no header section to parse (it is scored as unknown)."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


class MilterChecks:
    """Answers :meth:`verdict` for each message the milter sees."""

    def __init__(
        self,
        directory: Directory,
        activity: ActivityLog,
        guard: OutboundGuard,
        guard_settings: GuardSettings,
        *,
        mode: Mode,
        hold_action: HoldAction = "quarantine",
    ) -> None:
        self._directory = directory
        self._activity = activity
        self._guard = guard
        self._guard_settings = guard_settings
        self._trusted = _split(guard_settings.trusted_authserv_ids)
        self.mode = mode
        self.hold_action = hold_action

    async def verdict(self, message: Collected) -> Verdict:
        """Inbound or outbound by the envelope sender; raises on database trouble."""
        deletions = control_header_deletions(message.headers)
        sender_mailbox = await self._directory.lookup(message.sender) if message.sender else None
        if sender_mailbox is None:
            return Verdict(delete=deletions, add=await self._inbound(message))
        return await self._outbound(message, sender_mailbox, deletions)

    async def _inbound(self, message: Collected) -> tuple[tuple[str, str], ...]:
        raw = message.raw()
        # Pure CPU (~3 s/MB): off the event loop that also runs the other doors.
        score, rules = await asyncio.to_thread(self._score, raw)
        if message.truncated:
            rules = (*rules, TRUNCATED_RULE)
        settings = self._guard_settings
        verdict = verdict_for(
            score, warn_at=settings.inbound_warn_at, escalate_at=settings.inbound_escalate_at
        )
        log.info(
            "milter_inbound_scored",
            queue_id=message.queue_id,
            score=score,
            rules=list(rules),
            size=message.size,
        )
        return inbound_headers(score, rules, verdict)

    def _score(self, raw: bytes) -> tuple[int, tuple[str, ...]]:
        try:
            parsed = parse_message(raw)
        except MalformedMessage:
            return 0, (MALFORMED_RULE,)
        report = score_inbound(parsed, trusted_authserv_ids=self._trusted)
        return report.score, report.rules

    async def _outbound(
        self, message: Collected, mailbox_id: int, deletions: tuple[tuple[bytes, int], ...]
    ) -> Verdict:
        raw = message.raw()
        hits = await asyncio.to_thread(self._guard.scan_message, raw)
        rules = [hit.rule for hit in hits]
        high = [hit.rule for hit in hits if hit.severity == HIGH]
        if message.truncated:
            rules.append(TRUNCATED_RULE)
        log.info(
            "milter_outbound_scanned",
            queue_id=message.queue_id,
            mailbox_id=mailbox_id,
            rules=rules,
            recipients=len(message.recipients),
            size=message.size,
            mode=self.mode,
        )
        if not high:
            added = (guard_header("warn", rules),) if hits else ()
            return Verdict(delete=deletions, add=added)
        if self.mode == "observe":
            log.warning("milter_would_hold", queue_id=message.queue_id, mailbox_id=mailbox_id, rules=high)
            return Verdict(delete=deletions, add=(guard_header("would-hold", rules),))
        reason = quarantine_reason(high)
        await self._record_hold(message, mailbox_id, raw, rules)
        if self.hold_action == "reject":
            return Verdict(reject=reason)
        return Verdict(delete=deletions, quarantine=reason)

    async def _record_hold(self, message: Collected, mailbox_id: int, raw: bytes, rules: list[str]) -> None:
        """One activity row per held message; a database failure does not undo the hold."""
        log.warning("milter_held", queue_id=message.queue_id, mailbox_id=mailbox_id, rules=rules)
        try:
            await self._activity.record(
                mailbox_id,
                ActivityAction.QUARANTINED,
                recipient=message.recipients[0] if message.recipients else "",
                reason=quarantine_reason(rules),
                message_id_hash=message_id_hash(message_id_of(raw)),
                detail={
                    "source": "milter",
                    "queue_id": message.queue_id,
                    "rules": rules,
                    "recipients": message.recipients[:50],
                    "size": message.size,
                    "hold_action": self.hold_action,
                },
            )
        except Exception as exc:  # the hold stands; only its record is missing
            log.error("milter_hold_not_recorded", queue_id=message.queue_id, error=type(exc).__name__)
