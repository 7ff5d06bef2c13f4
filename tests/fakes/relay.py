"""A real SMTP server (aiosmtpd, own thread) standing in for the outbound relay.

``mode`` scripts its answer to DATA: accept, defer (451) or reject (554); ``messages`` keeps
what it accepted.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.harness.ports import free_port


@dataclass
class RelaySink:
    """Start with :meth:`start`, stop with :meth:`stop`; can be restarted on the same port.

    With ``tls`` (an SSL context) it offers STARTTLS; with ``credentials`` it requires AUTH
    (PLAIN/LOGIN, only after STARTTLS) and records who logged in.
    """

    port: int
    mode: str = "accept"
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    controller: Controller | None = None
    tls: ssl.SSLContext | None = None
    credentials: tuple[str, str] | None = None
    logins: list[str] = field(default_factory=list)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        login, password = data.login.decode(), data.password.decode()
        ok = self.credentials is not None and (login, password) == self.credentials
        if ok:
            self.logins.append(login)
        # handled=False: aiosmtpd then answers 235 or 535 itself (with its default, True, it
        # would answer a failed AUTH with nothing at all, unlike any real server).
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "defer":
            return "451 4.3.0 try later"
        if self.mode == "reject":
            return "554 5.7.1 rejected by policy"
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.original_content))
        )
        return "250 2.0.0 Ok: queued"

    @classmethod
    def submission(cls, cert: Path, key: Path, credentials: tuple[str, str]) -> RelaySink:
        """Started on a free loopback port as a submission server: STARTTLS with this
        certificate, then AUTH with ``credentials`` required."""
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        return cls(free_port(), tls=tls, credentials=credentials).start()

    def start(self) -> RelaySink:
        extra: dict[str, Any] = {}
        if self.tls is not None:
            extra |= {"tls_context": self.tls, "require_starttls": True}
        if self.credentials is not None:
            extra |= {"authenticator": self._authenticate, "auth_required": True}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
