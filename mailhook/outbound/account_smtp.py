"""SMTP submission through an external mailbox's own provider (Gmail, Fastmail, any ISP).

Port 465 is implicit TLS (RFC 8314 §3.3); any other port must offer STARTTLS (RFC 3207, the
587 submission port): mailhook never sends a password over a connection that is not encrypted.
The server certificate and host name are always verified (``imap.ca_file`` adds a CA).

Errors follow the relay's classes (mailhook/outbound/smtp.py, RFC 5321 §4.2.1): nothing handed
over → :class:`RelayUnavailable` (retried later), a permanent 5yz → :class:`RelayRejected`. A
refused AUTH is a retry, not a rejection: the owner can fix the password and the reply still
goes out.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from mailhook.doors.imap.accounts import ExternalAccount
from mailhook.doors.imap.client import tls_context
from mailhook.errors import RelayUnavailable
from mailhook.logs import get_logger
from mailhook.outbound.smtp import submit
from mailhook.outbound.transport import OutgoingMessage

log = get_logger(__name__)

IMPLICIT_TLS_PORT = 465


class AccountSmtp:
    """Submits one message as one external account."""

    def __init__(self, *, ca_file: str = "", timeout: float = 30.0) -> None:
        self._tls: ssl.SSLContext = tls_context(ca_file)
        self._timeout = timeout

    async def send(self, account: ExternalAccount, message: OutgoingMessage) -> None:
        """One authenticated SMTP transaction; raises as described in the module docstring."""
        implicit = account.smtp_port == IMPLICIT_TLS_PORT
        client = aiosmtplib.SMTP(
            hostname=account.smtp_host,
            port=account.smtp_port,
            timeout=self._timeout,
            use_tls=implicit,
            start_tls=not implicit,
            tls_context=self._tls,
        )
        where = f"{account.smtp_host}:{account.smtp_port}"
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise RelayUnavailable(f"account SMTP {where} unreachable ({type(exc).__name__})") from exc
        try:
            await self._transact(client, account, message)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _transact(
        self, client: aiosmtplib.SMTP, account: ExternalAccount, message: OutgoingMessage
    ) -> None:
        try:
            await client.login(account.login, account.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise RelayUnavailable(f"account SMTP refused the login ({exc.code})") from exc
        except aiosmtplib.SMTPException as exc:
            raise RelayUnavailable(f"account SMTP login failed ({type(exc).__name__})") from exc
        await submit(client, message, "account SMTP")
