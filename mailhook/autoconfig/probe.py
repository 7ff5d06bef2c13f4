"""Tries an external mailbox's IMAP and SMTP settings before they are saved (issue #8).

:meth:`ConnectionProbe.run` does what the IMAP door and the account SMTP will do later, through
the same code: IMAP connect + LOGIN + SELECT INBOX (``doors/imap/client.py``), and SMTP connect +
EHLO + TLS (implicit on 465, else STARTTLS) + AUTH (``outbound/account_smtp.py``). Both go
through the SSRF host check first (:mod:`mailhook.net.hosts`, ``imap.allow_hosts``), run at
the same time, and each has :data:`PROBE_TIMEOUT` seconds. Nothing is stored.

Each protocol answers ``ok`` or one :class:`ProbeResult` code with a sentence a user can act on:
``auth_failed``, ``host_refused`` (a private address), ``cannot_resolve``, ``cannot_connect``,
``tls_failed``, ``timeout``, ``server_error``. The password never appears in an answer (a
server that echoes it gets it masked) and is never logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Final

import aioimaplib
import aiosmtplib

from mailhook.doors.imap.client import (
    ImapCommandFailed,
    ImapLoginFailed,
    ImapSession,
    ImapUnavailable,
    ServerAccess,
)
from mailhook.logs import get_logger
from mailhook.net.hosts import HostRefused, HostUnresolvable, Resolver
from mailhook.outbound.account_smtp import AccountSmtp, close
from mailhook.settings import ImapSettings
from mailhook.store.servers import MailServers

log = get_logger(__name__)

#: Seconds each protocol's test may take in all (DNS, connect, TLS, login).
PROBE_TIMEOUT: Final = 10.0
_SERVER_TEXT_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class ProbeResult:
    """One protocol's outcome: ``ok``, else a ``code`` and an ``error`` in plain words."""

    ok: bool
    code: str = ""
    error: str = ""


@dataclass(frozen=True)
class ProbeReport:
    """Both protocols' outcomes; ``ok`` when both worked."""

    ok: bool
    imap: ProbeResult
    smtp: ProbeResult


class ConnectionProbe:
    """Runs the tests with the installation's TLS trust and host allow-list."""

    def __init__(
        self, settings: ImapSettings, *, timeout: float = PROBE_TIMEOUT, resolver: Resolver | None = None
    ) -> None:
        access = ServerAccess.from_settings(settings, timeout)
        self._access = dataclasses.replace(access, resolver=resolver)
        self._smtp = AccountSmtp(access=self._access)
        self.timeout = timeout

    async def run(self, servers: MailServers) -> ProbeReport:
        """Test IMAP and SMTP side by side."""
        password = servers.password
        imap, smtp = await asyncio.gather(
            self._attempt(
                "IMAP", f"{servers.imap_host}:{servers.imap_port}", self._imap_login(servers), password
            ),
            self._attempt(
                "SMTP", f"{servers.smtp_host}:{servers.smtp_port}", self._smtp_login(servers), password
            ),
        )
        return ProbeReport(ok=imap.ok and smtp.ok, imap=imap, smtp=smtp)

    async def _attempt(
        self, protocol: str, server: str, login: Coroutine[Any, Any, None], password: str
    ) -> ProbeResult:
        """Run one protocol's ``login`` under the deadline; its failure explained."""
        try:
            async with asyncio.timeout(self.timeout):
                await login
        except Exception as exc:
            code, reason = explain(exc, self.timeout)
            if code == "server_error":
                log.warning("connection_test_unexpected", protocol=protocol, error=type(exc).__name__)
            error = _masked(f"{protocol} {server}: {reason}", password)
            return ProbeResult(ok=False, code=code, error=error)
        return ProbeResult(ok=True)

    async def _imap_login(self, servers: MailServers) -> None:
        """Connect, LOGIN, SELECT INBOX (what the IMAP door does first), LOGOUT."""
        session = await ImapSession.open(
            servers.imap_host, servers.imap_port, servers.login, servers.password, access=self._access
        )
        try:
            await session.select("INBOX")
        finally:
            await session.logout()

    async def _smtp_login(self, servers: MailServers) -> None:
        """Connect, EHLO, TLS, AUTH (what the account SMTP does before MAIL FROM), QUIT."""
        client = await self._smtp.connect(servers.smtp_host, servers.smtp_port)
        try:
            await client.login(servers.login, servers.password)
        finally:
            await close(client)


def explain(exc: BaseException, timeout: float) -> tuple[str, str]:
    """A failure's code and a sentence saying what went wrong and what to check.

    The most telling exception anywhere in the chain wins, in the order of :data:`_EXPLAINERS`:
    a refused login beats everything, a TLS error wrapped in a connection error is a TLS failure.
    """
    chain = list(_chain(exc))
    for explainer in _EXPLAINERS:
        found = explainer(chain, timeout)
        if found is not None:
            return found
    return _server_problem(chain[0])


Explained = tuple[str, str] | None


def _login_problem(chain: list[BaseException], timeout: float) -> Explained:
    for link in chain:
        if isinstance(link, ImapLoginFailed | aiosmtplib.SMTPAuthenticationError):
            return "auth_failed", (
                f"the server refused the login ({_server_text(link)}); check the login and the "
                "password (some providers want an app password)"
            )
    return None


def _host_problem(chain: list[BaseException], timeout: float) -> Explained:
    for link in chain:
        if isinstance(link, HostUnresolvable):
            return "cannot_resolve", f"cannot find the host ({link})"
        if isinstance(link, HostRefused):
            return "host_refused", (
                f"{link}; mailhook connects only to public addresses unless an administrator "
                "allows the host (imap.allow_hosts)"
            )
    return None


def _tls_problem(chain: list[BaseException], timeout: float) -> Explained:
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return "tls_failed", f"TLS failure: the server's certificate is not valid ({link.verify_message})"
        if isinstance(link, ssl.SSLError):
            return "tls_failed", (
                f"TLS failure ({link.reason or type(link).__name__}); is the port right? IMAP needs "
                "implicit TLS (usually 993), SMTP 465 (implicit TLS) or 587 (STARTTLS)"
            )
        if isinstance(link, aiosmtplib.SMTPException) and "STARTTLS" in str(link):
            return "tls_failed", (
                "the server does not offer STARTTLS on this port, and mailhook never sends a "
                "password unencrypted; use 465 (implicit TLS) or 587"
            )
    return None


def _timeout_problem(chain: list[BaseException], timeout: float) -> Explained:
    if any(isinstance(link, TimeoutError | aioimaplib.CommandTimeout) for link in chain):
        return "timeout", f"no answer within {timeout:g} s"
    return None


def _connect_problem(chain: list[BaseException], timeout: float) -> Explained:
    for link in chain:
        if isinstance(link, ConnectionError | aiosmtplib.SMTPServerDisconnected):
            return "cannot_connect", "cannot connect (the connection was refused or closed)"
        if isinstance(link, OSError):
            return "cannot_connect", f"cannot connect ({link.strerror or type(link).__name__})"
    return None


_EXPLAINERS = (_login_problem, _host_problem, _tls_problem, _timeout_problem, _connect_problem)


def _server_problem(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ImapCommandFailed):
        return "server_error", "logged in, but the server would not open the INBOX"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return "server_error", f"the server answered {_server_text(exc)}"
    if isinstance(exc, ImapUnavailable | aioimaplib.AioImapException | aiosmtplib.SMTPException):
        # These messages carry the exception type and the server's words, never credentials.
        return "server_error", f"the server did not answer as expected ({_server_text(exc)})"
    return "server_error", f"unexpected error ({type(exc).__name__})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling (``from None`` included)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _server_text(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    else:
        text = str(exc) or type(exc).__name__
    return _CONTROL.sub(" ", text).strip()[:_SERVER_TEXT_CHARS]


def _masked(text: str, password: str) -> str:
    """``text`` with the password masked, should a server have echoed it."""
    return text.replace(password, "***") if password else text
