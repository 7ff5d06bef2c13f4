"""Encryption at rest: the spool, held replies, the sandbox outbox and stored credentials.

Fernet (AES-128-CBC + HMAC-SHA256) through :class:`cryptography.fernet.MultiFernet`, so keys can
be rotated: the first key encrypts, every key decrypts (``security.encryption_key`` is a
comma-separated list).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mailhook.errors import ConfigError, MailhookError


class SealBroken(MailhookError):
    """A sealed value could not be opened: wrong key or tampered data."""


class Sealer:
    """Seal and open byte strings with the installation's Fernet keys."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ConfigError("security.encryption_key is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError:
            raise ConfigError(
                "security.encryption_key must be url-safe base64 Fernet key(s) "
                "(generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None

    def seal(self, data: bytes) -> bytes:
        """Encrypt and authenticate ``data``."""
        return self._fernet.encrypt(data)

    def open(self, token: bytes) -> bytes:
        """Decrypt a value sealed with any configured key."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SealBroken("sealed data could not be decrypted (wrong key or tampered)") from None
