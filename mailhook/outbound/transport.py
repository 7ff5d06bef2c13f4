"""The one interface every delivery method implements.

``send`` must raise :class:`~mailhook.errors.RelayUnavailable` only when the message was
certainly NOT handed over (connection refused, a 4xx before the end of DATA), and
:class:`~mailhook.errors.RelayRejected` for a permanent 5xx. Any other exception means the
outcome is unknown, and the reply is never sent again (DESIGN.md invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered reply with its envelope."""

    reply_id: int
    mailbox_id: int
    message_id: str
    envelope_sender: str
    recipients: tuple[str, ...]
    data: bytes


class Transport(Protocol):
    """Delivers rendered replies."""

    name: str

    async def send(self, message: OutgoingMessage) -> None:
        """Hand the message over, or raise as described in the module docstring."""
        ...

    async def was_delivered(self, reply_id: int) -> bool | None:
        """After a crash mid-send: True/False if this transport can tell, None if it cannot."""
        ...
