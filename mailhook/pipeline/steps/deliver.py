"""Step 9, deliver: the reply state machine around the transport (docs/reliability.md).

``sending`` is committed before the transport is called. A job that comes back after a crash
finds it there and does not send again unless the transport can prove the reply never left.
"""

from __future__ import annotations

from mailhook.errors import RelayRejected, RelayUnavailable
from mailhook.logs import get_logger
from mailhook.outbound.transport import OutgoingMessage, Transport
from mailhook.pipeline.context import MessageContext, Stop
from mailhook.store.activity import ActivityAction
from mailhook.store.models import ReplyState
from mailhook.store.replies import ReplyRecord, ReplyStore

log = get_logger(__name__)


class DeliverStep:
    """Send exactly once, or record why not."""

    name = "deliver"

    def __init__(self, replies: ReplyStore, transport: Transport) -> None:
        self._replies = replies
        self._transport = transport

    async def process(self, ctx: MessageContext) -> None:
        """Move the reply to ``sent`` (or stop with the reason it was not)."""
        assert ctx.recipients is not None, "compose step did not run"
        record = await self._replies.prepare(
            job_id=ctx.job.id,
            mailbox_id=ctx.need_mailbox().id,
            message_id=ctx.reply_message_id,
            recipients=ctx.recipients.all,
            data=ctx.reply_data,
        )
        await self.finish(ctx, record)

    async def finish(self, ctx: MessageContext, record: ReplyRecord) -> None:
        """Take an existing reply record to its end state; always raises :class:`Stop`."""
        mailbox = ctx.need_mailbox()
        primary = record.recipients[0] if record.recipients else ""
        if record.state is ReplyState.HELD:
            raise Stop(ActivityAction.QUEUED, "held for approval")
        if record.state is ReplyState.DRAFTED:
            raise Stop(ActivityAction.DRAFTED, "draft mode")
        if record.state is ReplyState.SENDING:
            record = await self._resolve_unknown(record)
        if record.state is ReplyState.SENT:
            raise Stop(ActivityAction.REPLIED, "sent before a restart", recipient=primary)
        if record.state is ReplyState.UNCONFIRMED:
            raise Stop(ActivityAction.ERROR, "reply may have been sent before a crash; not sent again")
        if record.state is not ReplyState.PENDING or record.data is None:
            raise Stop(ActivityAction.ERROR, f"reply is {record.state.value}")
        await self._send(record, mailbox.id, mailbox.address)
        raise Stop(ActivityAction.REPLIED, "", recipient=primary)

    async def _resolve_unknown(self, record: ReplyRecord) -> ReplyRecord:
        delivered = await self._transport.was_delivered(record.id)
        if delivered is True:
            await self._replies.move(record.id, ReplyState.SENT, erase=True)
            return _with_state(record, ReplyState.SENT)
        if delivered is False:
            await self._replies.move(record.id, ReplyState.PENDING)
            return _with_state(record, ReplyState.PENDING)
        await self._replies.move(record.id, ReplyState.UNCONFIRMED, erase=True)
        log.warning("reply_unconfirmed", reply=record.id)
        return _with_state(record, ReplyState.UNCONFIRMED)

    async def _send(self, record: ReplyRecord, mailbox_id: int, sender: str) -> None:
        assert record.data is not None
        if not await self._replies.move(record.id, ReplyState.SENDING, expect=ReplyState.PENDING):
            raise Stop(ActivityAction.ERROR, "reply was taken by another worker")
        outgoing = OutgoingMessage(
            reply_id=record.id,
            mailbox_id=mailbox_id,
            message_id=record.message_id,
            envelope_sender=sender,
            recipients=record.recipients,
            data=record.data,
        )
        try:
            await self._transport.send(outgoing)
        except RelayUnavailable as exc:
            # Certainly not handed over: safe to try again later.
            await self._replies.move(record.id, ReplyState.PENDING, error=str(exc))
            raise
        except RelayRejected as exc:
            await self._replies.move(record.id, ReplyState.FAILED, error=str(exc), erase=True)
            raise Stop(ActivityAction.ERROR, f"relay rejected the reply: {exc}") from None
        except Exception as exc:
            await self._replies.move(record.id, ReplyState.UNCONFIRMED, error=type(exc).__name__, erase=True)
            raise Stop(ActivityAction.ERROR, "reply outcome unknown; not sent again") from None
        await self._replies.move(record.id, ReplyState.SENT, erase=True)


def _with_state(record: ReplyRecord, state: ReplyState) -> ReplyRecord:
    return ReplyRecord(record.id, state, record.message_id, record.recipients, record.data)
