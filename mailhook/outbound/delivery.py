"""Delivery of one outgoing record through the transport, exactly as docs/reliability.md says.

Every path that sends (agent replies, escalation notices, and later approvals and the API) goes
through :meth:`OutgoingDelivery.deliver`, so the crash-safety rules live in one place.
"""

from __future__ import annotations

import enum

from mailhook.errors import RelayRejected, RelayUnavailable
from mailhook.logs import get_logger
from mailhook.outbound.dkim import DkimSigner
from mailhook.outbound.transport import OutgoingMessage, Transport
from mailhook.store.models import ReplyState
from mailhook.store.replies import ReplyRecord, ReplyStore

log = get_logger(__name__)


class Delivered(enum.Enum):
    """How a delivery attempt ended (a temporary failure raises instead)."""

    SENT = "sent"
    ALREADY_SENT = "already sent"
    UNCONFIRMED = "may have been sent before a crash; not sent again"
    REJECTED = "rejected by the relay"
    NOT_SENDABLE = "not in a sendable state"


class OutgoingDelivery:
    """Moves a record through ``pending → sending → sent`` around one transport call."""

    def __init__(self, replies: ReplyStore, transport: Transport, signer: DkimSigner | None = None) -> None:
        self.replies = replies
        self.transport = transport
        self.signer = signer

    async def deliver(self, record: ReplyRecord, mailbox_id: int) -> Delivered:
        """Send unless already sent or possibly sent. Raises RelayUnavailable to retry later."""
        if record.state is ReplyState.SENDING:
            record = await self._resolve_unknown(record)
        if record.state is ReplyState.SENT:
            return Delivered.ALREADY_SENT
        if record.state is ReplyState.UNCONFIRMED:
            return Delivered.UNCONFIRMED
        if record.state is not ReplyState.PENDING or record.data is None:
            return Delivered.NOT_SENDABLE
        if not await self.replies.move(record.id, ReplyState.SENDING, expect=ReplyState.PENDING):
            return Delivered.NOT_SENDABLE  # another worker holds it
        return await self._send(record, mailbox_id)

    async def _send(self, record: ReplyRecord, mailbox_id: int) -> Delivered:
        assert record.data is not None
        data = record.data
        if self.signer is not None:
            data = self.signer.sign(data, record.envelope_sender.rpartition("@")[2])
        outgoing = OutgoingMessage(
            reply_id=record.id,
            mailbox_id=mailbox_id,
            message_id=record.message_id,
            envelope_sender=record.envelope_sender,
            recipients=record.recipients,
            data=data,
        )
        try:
            await self.transport.send(outgoing)
        except RelayUnavailable as exc:
            # Certainly not handed over: safe to try again later.
            await self.replies.move(record.id, ReplyState.PENDING, error=str(exc))
            raise
        except RelayRejected as exc:
            await self.replies.move(record.id, ReplyState.FAILED, error=str(exc), erase=True)
            return Delivered.REJECTED
        except Exception as exc:
            await self.replies.move(record.id, ReplyState.UNCONFIRMED, error=type(exc).__name__, erase=True)
            log.warning("outgoing_unconfirmed", reply=record.id, error=type(exc).__name__)
            return Delivered.UNCONFIRMED
        await self.replies.move(record.id, ReplyState.SENT, erase=True)
        return Delivered.SENT

    async def _resolve_unknown(self, record: ReplyRecord) -> ReplyRecord:
        delivered = await self.transport.was_delivered(record.id)
        if delivered is True:
            await self.replies.move(record.id, ReplyState.SENT, erase=True)
            return record.moved(ReplyState.SENT)
        if delivered is False:
            await self.replies.move(record.id, ReplyState.PENDING)
            return record.moved(ReplyState.PENDING)
        await self.replies.move(record.id, ReplyState.UNCONFIRMED, erase=True)
        log.warning("outgoing_unconfirmed", reply=record.id)
        return record.moved(ReplyState.UNCONFIRMED)
