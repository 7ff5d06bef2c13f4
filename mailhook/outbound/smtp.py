"""SMTP submission to the configured relay (usually the local Postfix), via aiosmtplib.

Error classes follow RFC 5321 §4.2.1: a 4yz reply or a connection failure before the end of DATA
means the relay did not take the message (:class:`RelayUnavailable`, retried later); a 5yz reply
is permanent (:class:`RelayRejected`). A failure after the final ``.`` was sent is ambiguous and
re-raised as is: the caller records the reply as unconfirmed rather than risk a second copy.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from mailhook.errors import RelayRejected, RelayUnavailable
from mailhook.logs import get_logger
from mailhook.outbound.transport import OutgoingMessage
from mailhook.settings import OutboundSettings

log = get_logger(__name__)


class SmtpTransport:
    """Submits replies to the relay."""

    name = "smtp"

    def __init__(self, settings: OutboundSettings) -> None:
        self._settings = settings
        # RFC 8314/7817: a submission client verifies the server certificate and host name.
        self._tls = ssl.create_default_context(cafile=settings.relay_ca_file or None)

    async def send(self, message: OutgoingMessage) -> None:
        """One SMTP transaction per reply."""
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.relay_host,
            port=settings.relay_port,
            timeout=settings.timeout_seconds,
            start_tls=settings.relay_starttls,
            use_tls=False,
            tls_context=self._tls,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayUnavailable(f"relay {settings.relay_host}:{settings.relay_port} unreachable") from exc
        try:
            await self._transact(client, message)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _transact(self, client: aiosmtplib.SMTP, message: OutgoingMessage) -> None:
        settings = self._settings
        if settings.relay_username:
            try:
                await client.login(settings.relay_username, settings.relay_password)
            except aiosmtplib.SMTPResponseException as exc:
                raise classify(exc.code, "relay") from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise RelayUnavailable("relay connection lost before DATA") from exc
        await submit(client, message, "relay")

    async def was_delivered(self, reply_id: int) -> bool | None:
        """An SMTP relay cannot be asked whether it took a message: unknown."""
        return None


async def submit(client: aiosmtplib.SMTP, message: OutgoingMessage, peer: str) -> None:
    """MAIL, RCPT and DATA on a connected (and, where needed, authenticated) client.

    ``peer`` names the server in errors and logs ("relay", "account SMTP").
    """
    try:
        await client.mail(message.envelope_sender)
        refused = 0
        for rcpt in message.recipients:
            try:
                await client.rcpt(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused += 1
                log.warning("smtp_refused_recipient", peer=peer, code=exc.code)
                if exc.code < 500:
                    raise RelayUnavailable(f"{peer} deferred a recipient ({exc.code})") from exc
        if refused == len(message.recipients):
            raise RelayRejected(f"{peer} refused every recipient")
    except aiosmtplib.SMTPResponseException as exc:
        raise classify(exc.code, peer) from exc
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        raise RelayUnavailable(f"{peer} connection lost before DATA") from exc
    try:
        await client.data(message.data)
    except aiosmtplib.SMTPResponseException as exc:
        # The server answered the final dot: its verdict is definite.
        raise classify(exc.code, peer) from exc


def classify(code: int, peer: str) -> RelayUnavailable | RelayRejected:
    """RFC 5321 §4.2.1: 4yz is "try again later", anything else from the server is final."""
    if 400 <= code < 500:
        return RelayUnavailable(f"{peer} answered {code}")
    return RelayRejected(f"{peer} answered {code}")
