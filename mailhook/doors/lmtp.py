"""The LMTP door (RFC 2033), on aiosmtpd, in the application's own event loop.

aiosmtpd 1.4.6 answers an oversize message, an over-long line and a hook exception after DATA
with ONE reply line, while RFC 2033 §4.2 requires one per accepted recipient; Postfix then waits
for the missing replies until ``lmtp_data_done_timeout`` (DESIGN.md "Known traps"). This
protocol subclass rewrites such single replies into one line per recipient, and makes every
unexpected exception a temporary ``451 4.3.0`` (invariant 1), never aiosmtpd's permanent 500.
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from mailhook.errors import SMTP_TEMPFAIL, MessageTooLarge, smtp_reply_for
from mailhook.logs import get_logger

log = get_logger(__name__)

LINE_TOO_LONG = "500 5.6.0 Line too long (RFC 5321 4.5.3.1.6)"


class SessionLimiter:
    """Counts open sessions of one door; past the limit new ones get ``421`` and are closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class GuardedSessionMixin:
    """Connection bookkeeping and the temporary-failure default shared by both doors."""

    limiter: SessionLimiter
    _counted = False

    def connection_made(self, transport: Any) -> None:
        if not getattr(self, "_original_transport", None) and not self._counted:
            if self.limiter.open >= self.limiter.limit:
                # RFC 5321 4.3.2: 421 closes the channel; the client retries later.
                transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
                transport.close()
                self._refused = True
                return
            self.limiter.open += 1
            self._counted = True
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        if getattr(self, "_refused", False):
            return
        if self._counted:
            self.limiter.open -= 1
            self._counted = False
        super().connection_lost(error)  # type: ignore[misc]


class LMTPDoor(GuardedSessionMixin, LMTP):
    """aiosmtpd's LMTP with RFC 2033 per-recipient replies on every path."""

    def __init__(self, handler: Any, *, limiter: SessionLimiter, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limiter = limiter
        self._after_354 = False
        self._data_rcpts = 0

    async def smtp_DATA(self, arg: str) -> None:
        self._data_rcpts = len(self.envelope.rcpt_tos) if self.envelope else 0
        await super().smtp_DATA(arg)

    async def push(self, status: str | bytes) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("354"):
            self._after_354 = True
        elif self._after_354:
            # The one reply to the data phase. Our handler already answers per recipient
            # (several lines); a single line came from aiosmtpd itself: repeat it.
            self._after_354 = False
            if "\r\n" not in text:
                text = "\r\n".join([self._per_recipient(text)] * max(1, self._data_rcpts))
        await super().push(text)

    @staticmethod
    def _per_recipient(text: str) -> str:
        if text.startswith("552"):
            return smtp_reply_for(MessageTooLarge())
        if text.startswith("500 Line too long"):
            return LINE_TOO_LONG
        return text

    async def handle_exception(self, error: Exception) -> str:
        log.error("lmtp_session_error", error=type(error).__name__)
        if self._after_354:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        # After DATA, push() repeats this once per recipient.
        return SMTP_TEMPFAIL


class SMTPDoor(GuardedSessionMixin, SMTP):
    """aiosmtpd's SMTP for an MX or relay pointed straight at mailhook (SIZE, STARTTLS)."""

    def __init__(self, handler: Any, *, limiter: SessionLimiter, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limiter = limiter

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", error=type(error).__name__)
        return SMTP_TEMPFAIL
