"""Start the LMTP and SMTP doors as servers in the running event loop (no threads)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from mailhook.doors.delivery import DeliveryHandler
from mailhook.doors.lmtp import LMTPDoor, SessionLimiter, SMTPDoor
from mailhook.settings import LmtpSettings, SmtpSettings

#: RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for a command.
SESSION_TIMEOUT = 300.0


def _session_options(max_message_bytes: int, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """What both doors pass to aiosmtpd for every session."""
    return {
        "data_size_limit": max_message_bytes,
        "enable_SMTPUTF8": True,
        "decode_data": False,  # bytes in, bytes to the spool: no charset guessing
        "hostname": socket.getfqdn(),
        "ident": "mailhook",  # the greeting names no software version
        "timeout": SESSION_TIMEOUT,
        "loop": loop,
    }


async def start_lmtp(handler: DeliveryHandler, settings: LmtpSettings) -> asyncio.Server:
    """Listen for LMTP; returns the server (``close()`` stops accepting)."""
    loop = asyncio.get_running_loop()
    limiter = SessionLimiter(settings.max_connections)
    options = _session_options(settings.max_message_bytes, loop)

    def factory() -> LMTPDoor:
        return LMTPDoor(handler, limiter=limiter, **options)

    return await loop.create_server(factory, settings.host, settings.port, reuse_address=True)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """Server TLS context for STARTTLS (RFC 3207), TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def start_smtp(handler: DeliveryHandler, settings: SmtpSettings) -> asyncio.Server:
    """Listen for SMTP with SIZE (RFC 1870) and, when a certificate is set, STARTTLS."""
    loop = asyncio.get_running_loop()
    limiter = SessionLimiter(settings.max_connections)
    context = tls_context(settings.tls_cert, settings.tls_key) if settings.tls_cert else None
    options = _session_options(settings.max_message_bytes, loop)

    def factory() -> SMTPDoor:
        return SMTPDoor(
            handler,
            limiter=limiter,
            tls_context=context,
            require_starttls=settings.require_tls and context is not None,
            **options,
        )

    return await loop.create_server(factory, settings.host, settings.port, reuse_address=True)
