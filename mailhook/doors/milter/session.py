"""One milter connection's state machine: commands in, reply packets out.

The MTA opens a connection per SMTP session (Postfix) and may run several messages over it.
:class:`MilterSession` keeps the negotiated options, the macros, and the :class:`Collected`
message; at end-of-message it asks a :class:`Checker` for a :class:`Verdict` and turns it into
reply packets. A checker that fails is answered with the configured ``on_error`` reply
(``continue``: the mail goes on unmodified; ``tempfail``: the client retries): mail is never lost.

Memory is bounded: headers and body count against ``max_message_bytes``, the rest is not kept
(the message is marked truncated); recipients and macros have caps of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mailhook.logs import get_logger

from . import protocol as p
from .verdict import Collected, Final, Verdict

log = get_logger(__name__)

WANTED_ACTIONS = p.SMFIF_ADDHDRS | p.SMFIF_CHGHDRS | p.SMFIF_QUARANTINE
"""Add our headers, delete forged copies of them, hold outbound mail."""
SKIPPED_STEPS = p.SMFIP_NOUNKNOWN | p.SMFIP_NODATA
"""Steps we have no use for: the MTA need not send them (only if it offers to skip them)."""
MAX_RECIPIENTS = 1000
MAX_MACROS = 200


def _answer(data: bytes) -> bool:
    """Commands we only acknowledge (CONNECT, HELO, DATA, EOH, UNKNOWN)."""
    return True


class Checker(Protocol):
    """Decides about a whole message (see :mod:`mailhook.doors.milter.checks`)."""

    async def verdict(self, message: Collected) -> Verdict:
        """The verdict; may raise, which the session answers with ``on_error``."""
        ...


class MilterSession:
    """Feed it packets with :meth:`handle`; send back what it returns; stop when ``closed``."""

    def __init__(self, checker: Checker, *, max_message_bytes: int, on_error: Final = "continue") -> None:
        self._checker = checker
        self._max_bytes = max_message_bytes
        self._on_error = on_error
        self.negotiated = False
        self.actions = 0
        self.closed = False
        self.macros: dict[str, str] = {}
        self.message = Collected()
        self._steps = self._step_table()

    async def handle(self, packet: p.Packet) -> list[bytes]:
        """Reply packets for one command (none for MACRO, ABORT, QUIT_NC and QUIT)."""
        if packet.command == p.SMFIC_OPTNEG:
            return [self._negotiate(packet.data)]
        if not self.negotiated:
            raise p.ProtocolError("a command before option negotiation")
        if packet.command == p.SMFIC_BODYEOB:
            self._add_body(packet.data)  # Sendmail may send a last chunk with EOB
            return await self._end_of_message()
        step = self._steps[packet.command]
        return [p.CONTINUE] if step(packet.data) else []

    def _step_table(self) -> dict[bytes, Callable[[bytes], bool]]:
        """Command -> handler; a handler returns True when the command is answered CONTINUE."""
        return {
            p.SMFIC_MACRO: self._on_macro,
            p.SMFIC_CONNECT: _answer,
            p.SMFIC_HELO: _answer,
            p.SMFIC_DATA: _answer,
            p.SMFIC_EOH: _answer,
            p.SMFIC_UNKNOWN: _answer,
            p.SMFIC_MAIL: self._on_mail,
            p.SMFIC_RCPT: self._on_rcpt,
            p.SMFIC_HEADER: self._on_header,
            p.SMFIC_BODY: self._on_body,
            p.SMFIC_ABORT: self._on_abort,
            p.SMFIC_QUIT_NC: self._on_quit_new_connection,
            p.SMFIC_QUIT: self._on_quit,
        }

    def _on_macro(self, data: bytes) -> bool:
        self._remember_macros(data)
        return False

    def _on_mail(self, data: bytes) -> bool:
        self.message = Collected(sender=p.parse_address_args(data), queue_id=self.macros.get("i", "")[:64])
        return True

    def _on_rcpt(self, data: bytes) -> bool:
        self._add_recipient(p.parse_address_args(data))
        return True

    def _on_header(self, data: bytes) -> bool:
        self._add_header(*p.parse_header(data))
        return True

    def _on_body(self, data: bytes) -> bool:
        self._add_body(data)
        return True

    def _on_abort(self, data: bytes) -> bool:
        self.message = Collected()
        return False

    def _on_quit_new_connection(self, data: bytes) -> bool:
        self.message, self.macros = Collected(), {}
        return False

    def _on_quit(self, data: bytes) -> bool:
        self.closed = True
        return False

    def _negotiate(self, data: bytes) -> bytes:
        offer = p.parse_optneg(data)
        if offer.version < 2:
            raise p.ProtocolError(f"milter protocol version {offer.version} is too old")
        self.negotiated = True
        self.actions = offer.actions & WANTED_ACTIONS
        if self.actions != WANTED_ACTIONS:
            log.warning("milter_actions_refused", offered=offer.actions, wanted=WANTED_ACTIONS)
        return p.optneg_reply(min(offer.version, p.VERSION), self.actions, offer.protocol & SKIPPED_STEPS)

    def _remember_macros(self, data: bytes) -> None:
        for name, value in p.parse_macros(data).items():
            if name in self.macros or len(self.macros) < MAX_MACROS:
                self.macros[name] = value[:1000]
        queue_id = self.macros.get("i", "")
        if queue_id and not self.message.queue_id:
            self.message.queue_id = queue_id[:64]

    def _add_recipient(self, address: str) -> None:
        if len(self.message.recipients) < MAX_RECIPIENTS:
            self.message.recipients.append(address[:320])
        else:
            self.message.truncated = True

    def _room(self, size: int) -> bool:
        self.message.size += size
        fits = self.message.size <= self._max_bytes
        if not fits:
            self.message.truncated = True
        return fits

    def _add_header(self, name: bytes, value: bytes) -> None:
        if self._room(len(name) + len(value) + 4):
            self.message.headers.append((name, value))

    def _add_body(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._room(len(chunk)):
            self.message.body += chunk
        else:
            room = self._max_bytes - (self.message.size - len(chunk))
            if room > 0:
                self.message.body += chunk[:room]

    async def _end_of_message(self) -> list[bytes]:
        message, self.message = self.message, Collected()
        message.queue_id = message.queue_id or self.macros.get("i", "")[:64]
        try:
            verdict = await self._checker.verdict(message)
        except Exception as exc:  # any failure: the configured reply, never lost mail
            log.error(
                "milter_check_failed",
                error=type(exc).__name__,
                queue_id=message.queue_id,
                action=self._on_error,
            )
            return [p.TEMPFAIL if self._on_error == "tempfail" else p.CONTINUE]
        return self._replies(verdict)

    def _replies(self, verdict: Verdict) -> list[bytes]:
        """Modifications the negotiated actions allow, then the final reply."""
        if verdict.reject is not None:
            return [p.reply_code("550", "5.7.1", verdict.reject)]
        out: list[bytes] = []
        if self.actions & p.SMFIF_CHGHDRS:
            out += [p.change_header(index, name) for name, index in verdict.delete]
        if self.actions & p.SMFIF_ADDHDRS:
            out += [p.add_header(name, value) for name, value in verdict.add]
        if verdict.quarantine is not None:
            if self.actions & p.SMFIF_QUARANTINE:
                out.append(p.quarantine(verdict.quarantine))
            else:  # the MTA did not grant it: the message goes on, say so loudly
                log.error("milter_quarantine_not_allowed", reason=verdict.quarantine)
        out.append(p.TEMPFAIL if verdict.final == "tempfail" else p.CONTINUE)
        return out
