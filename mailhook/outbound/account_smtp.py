"""SMTP submission through an external mailbox's own provider (Gmail, Fastmail, any ISP).

Port 465 is implicit TLS (RFC 8314 §3.3); any other port must offer STARTTLS (RFC 3207, the
587 submission port): mailhook never sends a password over a connection that is not encrypted.
The server certificate and host name are always verified (``imap.ca_file`` adds a CA).

The host is the mailbox owner's choice: it passes the SSRF host check (:mod:`mailhook.net.hosts`,
``imap.allow_hosts`` lets private servers through) and the connection goes to the address that
was checked, while TLS verifies the certificate against the host name (SNI).

Errors follow the relay's classes (mailhook/outbound/smtp.py, RFC 5321 §4.2.1): nothing handed
over → :class:`RelayUnavailable` (retried later), a permanent 5yz → :class:`RelayRejected`. A
refused AUTH or a refused host is a retry, not a rejection: the owner can fix the password or
the host and the reply still goes out.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from mailhook.doors.imap.accounts import OpenedAccount
from mailhook.doors.imap.client import ServerAccess, tls_context
from mailhook.errors import RelayUnavailable
from mailhook.logs import get_logger
from mailhook.net.hosts import HostRefused, connect_vetted, parse_allow_list
from mailhook.outbound.smtp import submit
from mailhook.outbound.transport import OutgoingMessage

log = get_logger(__name__)

IMPLICIT_TLS_PORT = 465
#: What a failed connection or login can raise, before anything of a message was sent.
CONNECT_ERRORS = (HostRefused, aiosmtplib.SMTPException, OSError, ssl.SSLError)


class AccountSmtp:
    """Submits one message as one external account."""

    def __init__(
        self,
        *,
        ca_file: str = "",
        timeout: float = 30.0,
        allow_hosts: str = "",
        access: ServerAccess | None = None,
    ) -> None:
        # The allow-list was checked at start-up (settings.py); nothing malformed is left.
        self._access = access or ServerAccess(
            tls_context(ca_file), timeout, parse_allow_list(allow_hosts, skip_invalid=True)
        )

    async def send(self, account: OpenedAccount, message: OutgoingMessage) -> None:
        """One authenticated SMTP transaction; raises as described in the module docstring."""
        where = f"{account.smtp_host}:{account.smtp_port}"
        try:
            client = await self.connect(account.smtp_host, account.smtp_port)
        except HostRefused as exc:
            hint = "" if exc.address is None else "; an administrator can allow the host (imap.allow_hosts)"
            raise RelayUnavailable(f"account SMTP {where}: {exc}{hint}") from exc
        except CONNECT_ERRORS as exc:
            raise RelayUnavailable(f"account SMTP {where} unreachable ({type(exc).__name__})") from exc
        try:
            await self._transact(client, account, message)
        finally:
            await close(client)

    async def connect(self, host: str, port: int) -> aiosmtplib.SMTP:
        """A client connected to a vetted address of ``host``, in TLS (implicit on 465, else
        STARTTLS), EHLO done; raises one of :data:`CONNECT_ERRORS`."""
        access = self._access
        sock = await connect_vetted(await access.addresses(host, port), port, timeout=access.timeout)
        implicit = port == IMPLICIT_TLS_PORT
        # ``hostname`` is only the TLS server name here: the socket is already connected.
        client = aiosmtplib.SMTP(
            hostname=host,
            sock=sock,
            timeout=access.timeout,
            use_tls=implicit,
            start_tls=not implicit,
            tls_context=access.tls,
        )
        try:
            await client.connect()
        except BaseException:
            sock.close()  # closing twice is harmless; a connection that never came up leaks nothing
            raise
        return client

    async def _transact(
        self, client: aiosmtplib.SMTP, account: OpenedAccount, message: OutgoingMessage
    ) -> None:
        try:
            await client.login(account.login, account.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise RelayUnavailable(f"account SMTP refused the login ({exc.code})") from exc
        except aiosmtplib.SMTPException as exc:
            raise RelayUnavailable(f"account SMTP login failed ({type(exc).__name__})") from exc
        await submit(client, message, "account SMTP")


async def close(client: aiosmtplib.SMTP) -> None:
    """QUIT, or just drop the connection if that fails."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
