"""Builders of raw test messages, so each test states only the headers it is about."""

from __future__ import annotations

from mailhook.mail.parse import ParsedMessage, parse_message

DEFAULT_HEADERS = (
    "From: Alice Example <alice@example.org>",
    "To: agent@mailhook.test",
    "Subject: Hello",
    "Message-ID: <m1@example.org>",
    "Date: Tue, 04 Mar 2025 10:00:00 +0100",
)


def raw_message(*headers: str | bytes, body: str | bytes = "Hello there.\n") -> bytes:
    """CRLF-terminated message bytes from header lines ("Name: value") and a body."""
    lines = [h if isinstance(h, bytes) else h.encode("utf-8") for h in headers]
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(*headers: str | bytes, body: str | bytes = "Hello there.\n") -> ParsedMessage:
    """Parsed message; with no headers given, a plain mail from Alice to the agent."""
    return parse_message(raw_message(*(headers or DEFAULT_HEADERS), body=body))


def with_defaults(*headers: str) -> ParsedMessage:
    """The default mail plus ``headers``; a header given here replaces the default one."""
    names = {h.split(":", 1)[0].lower() for h in headers}
    kept = [h for h in DEFAULT_HEADERS if h.split(":", 1)[0].lower() not in names]
    return message(*kept, *headers)
