"""An external mailbox's servers and login: one type for the connection test, mailbox creation,
the IMAP door and the account's SMTP.

:class:`MailServers` is what the connection test tries; :class:`ExternalAccount` adds the address
and the poll interval a new mailbox needs; the IMAP door's opened account
(``doors/imap/accounts.py``) adds the mailbox id. The password is never in a ``repr``, so it
cannot reach a log line or a traceback that way (DESIGN.md invariant 3).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

from mailhook.errors import ValidationFailed
from mailhook.store.fields import MAX_LOGIN_CHARS, MAX_SECRET_CHARS, clean_host, clean_port, clean_text


@dataclass(frozen=True, kw_only=True)
class MailServers:
    """Where the IMAP and SMTP servers are, and the account's login and password."""

    imap_host: str
    imap_port: int = 993
    smtp_host: str
    smtp_port: int = 465
    login: str
    password: str = field(default="", repr=False)

    @classmethod
    def of(cls, source: object, **given: Any) -> Self:
        """One from ``source``'s attributes of the same names (an API body, a database row);
        ``given`` supplies or overrides fields ``source`` does not have."""
        names = [f.name for f in dataclasses.fields(cls) if f.name not in given and hasattr(source, f.name)]
        return cls(**{name: getattr(source, name) for name in names}, **given)

    def checked(self) -> Self:
        """This, with hosts normalised; :class:`ValidationFailed` for a bad host, port, login or
        password (the login is trimmed, the password kept as typed)."""
        login = clean_text("login", self.login, MAX_LOGIN_CHARS).strip()
        password = clean_text("password", self.password, MAX_SECRET_CHARS)
        if not login or not password:
            raise ValidationFailed("login and password are required")
        return dataclasses.replace(
            self,
            imap_host=clean_host("imap_host", self.imap_host),
            imap_port=clean_port("imap_port", self.imap_port),
            smtp_host=clean_host("smtp_host", self.smtp_host),
            smtp_port=clean_port("smtp_port", self.smtp_port),
            login=login,
            password=password,
        )


@dataclass(frozen=True, kw_only=True)
class ExternalAccount(MailServers):
    """An existing mailbox reached over IMAP (incoming) and SMTP submission (outgoing)."""

    address: str
    poll_interval_minutes: int = 0
