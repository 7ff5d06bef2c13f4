"""A small, strict LMTP client for tests (RFC 2033).

``smtplib.LMTP`` reads a single reply after DATA, so it cannot show whether a server answers
once per recipient; this one reads exactly one reply per accepted recipient and fails loudly
(timeout) if the server sends fewer.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass


@dataclass
class LmtpResult:
    """What the server said: RCPT replies and the per-recipient DATA replies."""

    rcpt: dict[str, str]
    data: dict[str, str]


class LmtpClient:
    """One connection; use as a context manager."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()
        self.lhlo = self.command("LHLO tests.local")

    def __enter__(self) -> LmtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.command("QUIT")
        self.file.close()
        self.sock.close()

    def reply(self) -> str:
        """One (possibly multi-line) reply, lines joined with newlines."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send(self, sender: str, recipients: list[str], data: bytes) -> LmtpResult:
        """A full transaction. Dot-stuffs ``data`` (RFC 5321 4.5.2)."""
        assert self.command(f"MAIL FROM:<{sender}>").startswith("250")
        rcpt = {r: self.command(f"RCPT TO:<{r}>") for r in recipients}
        accepted = [r for r, reply in rcpt.items() if reply.startswith("250")]
        if not accepted:
            self.command("RSET")
            return LmtpResult(rcpt, {})
        start = self.command("DATA")
        assert start.startswith("354"), start
        body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n"))
        self.sock.sendall(stuffed + b".\r\n")
        return LmtpResult(rcpt, {r: self.reply() for r in accepted})


def lmtp_send(port: int, sender: str, recipients: list[str], data: bytes) -> LmtpResult:
    """Open, send one transaction, close."""
    with LmtpClient("127.0.0.1", port) as client:
        return client.send(sender, recipients, data)


def make_message(
    *,
    sender: str = "alice@example.org",
    to: str = "bot@agents.test",
    cc: str = "",
    subject: str = "Question about my order",
    body: str = "Hello, where is my order #1234?",
    message_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """An RFC 5322 message as bytes with CRLF line ends."""
    import uuid

    headers = {
        "From": f"Alice <{sender}>",
        "To": to,
        "Subject": subject,
        "Date": "Wed, 25 Nov 2026 10:00:00 +0000",
        "Message-ID": message_id or f"<{uuid.uuid4().hex}@example.org>",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
    }
    if cc:
        headers["Cc"] = cc
    headers.update(extra_headers or {})
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n" + body.replace("\n", "\r\n") + "\r\n").encode()
