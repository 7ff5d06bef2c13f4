"""A real SMTP server (aiosmtpd, own thread) standing in for the outbound relay.

``mode`` scripts its answer to DATA: accept, defer (451) or reject (554); ``messages`` keeps
what it accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class RelaySink:
    """Start with :meth:`start`, stop with :meth:`stop`; can be restarted on the same port."""

    port: int
    mode: str = "accept"
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "defer":
            return "451 4.3.0 try later"
        if self.mode == "reject":
            return "554 5.7.1 rejected by policy"
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.original_content))
        )
        return "250 2.0.0 Ok: queued"

    def start(self) -> RelaySink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
