"""Checks of the free-text, host and port fields an owner gives; each raises ``ValidationFailed``
with a sentence naming the field."""

from __future__ import annotations

import ipaddress
from typing import Final

from mailhook.errors import ValidationFailed
from mailhook.net.names import host_name

MAX_SECRET_CHARS: Final = 4096
#: RFC 5321's longest address (4.5.3.1); logins are addresses or shorter user names.
MAX_LOGIN_CHARS: Final = 320


def clean_text(field: str, value: str, max_chars: int) -> str:
    """``value`` if it fits; NUL is refused because PostgreSQL text cannot hold it."""
    if len(value) > max_chars:
        raise ValidationFailed(f"{field} must be at most {max_chars:,} characters")
    if "\x00" in value:
        raise ValidationFailed(f"{field} must not contain NUL characters")
    return value


def clean_host(field: str, value: str) -> str:
    """A DNS host name (ASCII/punycode) or an IP address."""
    try:
        return str(ipaddress.ip_address(value.strip().lower().removesuffix(".")))
    except ValueError:
        pass
    host = host_name(value)
    if host is None:
        raise ValidationFailed(f"{field} must be a host name or an IP address")
    return host


def clean_port(field: str, value: int) -> int:
    """A TCP port."""
    if not 1 <= value <= 65535:
        raise ValidationFailed(f"{field} must be between 1 and 65535")
    return value


def clean_login(value: str) -> str:
    """The IMAP/SMTP login: not empty once trimmed."""
    login = clean_text("login", value, MAX_LOGIN_CHARS).strip()
    if not login:
        raise ValidationFailed("login must not be empty")
    return login


def clean_password(value: str) -> str:
    """The account password, kept as typed (spaces may belong to it), not empty."""
    password = clean_text("password", value, MAX_SECRET_CHARS)
    if not password:
        raise ValidationFailed("password must not be empty")
    return password
