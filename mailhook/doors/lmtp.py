"""The LMTP door (RFC 2033), on aiosmtpd, in the application's own event loop.

aiosmtpd 1.4.6 answers an oversize message, an over-long line and a hook exception after DATA
with ONE reply line, while RFC 2033 §4.2 requires one per accepted recipient; Postfix then waits
for the missing replies until ``lmtp_data_done_timeout`` (DESIGN.md "Known traps"). This
protocol subclass rewrites such single replies into one line per recipient, and makes every
unexpected exception a temporary ``451 4.3.0`` (invariant 1), never aiosmtpd's permanent 500.

Two per-session costs of aiosmtpd are cut here (docs/benchmarks.md, "LMTP ingest"): its
constructor lists the class's methods with ``inspect.getmembers`` on every connection, and its
address parser defines a class on every MAIL and RCPT command.
"""

from __future__ import annotations

import re
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from mailhook.errors import SMTP_TEMPFAIL, MessageTooLarge, smtp_reply_for
from mailhook.logs import get_logger

log = get_logger(__name__)

LINE_TOO_LONG = "500 5.6.0 Line too long (RFC 5321 4.5.3.1.6)"


#: ``<local@domain>`` with an RFC 5321 §4.1.2 Dot-string local part and an LDH domain. Such a
#: path needs no full RFC 5322 parse: its address is the text between the brackets. Anything
#: else (quoted local parts, address literals, UTF-8, comments, source routes, no brackets) goes
#: to the parser aiosmtpd uses.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>")
#: RFC 5322 §3.2.2 folding white space as the header parser reads it (space and tab).
_WSP = " \t"

_SESSION_NAMES: dict[type, list[str]] = {}


class FastSessionMixin:
    """Per-class answers to what aiosmtpd asks of every new session object.

    ``SMTP.__init__`` finds its command and AUTH methods with ``inspect.getmembers(self)`` and
    ``dir(self)``: a walk over about 90 attributes on every connection, the largest single cost
    of a short LMTP session. The answer is the same for every instance of a class, so ``dir()``
    gives just the names aiosmtpd looks for, computed once per class.
    """

    def __dir__(self) -> list[str]:
        cls = type(self)
        names = _SESSION_NAMES.get(cls)
        if names is None:
            names = [name for name in dir(cls) if name.startswith(("smtp_", "auth_"))]
            _SESSION_NAMES[cls] = names
        return list(names)

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of a MAIL/RCPT path and the rest of the command, as aiosmtpd's own does.

        aiosmtpd 1.4.6 declares a ``typing.Protocol`` class inside this method, so each call
        builds a class (0.08 ms, twice per message). ``(None, None)`` for a path that does not
        parse or whose local part is over ``local_part_limit`` (RFC 5321 §4.5.3.1.1).
        """
        if not arg:
            return "", ""
        plain = _plain_path(arg)
        if plain is not None:
            address, rest = plain
        else:
            try:
                parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
                token, rest = parse(arg)
            except HeaderParseError:
                return None, None
            address = token.addr_spec
        local_part = address.rpartition("@")[0]
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return address, rest


def _plain_path(arg: str) -> tuple[str, str] | None:
    """Address and parameters of a plain ``<local@domain>`` path; None for anything else.

    The parser would also drop the white space around the path (RFC 5322 CFWS), so the
    parameters start at their first character; a comment after the path goes to the parser.
    """
    stripped = arg.lstrip(_WSP)
    match = _PLAIN_PATH.match(stripped)
    if match is None:
        return None
    after = stripped[match.end() :]
    if after and after[0] not in _WSP:
        return None
    rest = after.lstrip(_WSP)
    if rest.startswith("("):
        return None
    return match.group(1), rest


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


class LMTPDoor(FastSessionMixin, GuardedSessionMixin, LMTP):
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


class SMTPDoor(FastSessionMixin, GuardedSessionMixin, SMTP):
    """aiosmtpd's SMTP for an MX or relay pointed straight at mailhook (SIZE, STARTTLS)."""

    def __init__(self, handler: Any, *, limiter: SessionLimiter, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limiter = limiter

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", error=type(error).__name__)
        return SMTP_TEMPFAIL
