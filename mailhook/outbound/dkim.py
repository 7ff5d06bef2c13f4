"""DKIM signing (RFC 6376) of everything mailhook sends, when the domain has a key.

Keys are PEM files ``<dkim.key_dir>/<domain>.pem`` (RSA, ≥ 1024 bits; ed25519 per RFC 8463
works with ``<domain>.ed25519.pem``); the selector comes from ``dkim.selector`` and the public
key is published at ``<selector>._domainkey.<domain>``. Signing happens at send time on the
final bytes, so an owner's edit before approval is covered by the signature.
"""

from __future__ import annotations

from pathlib import Path

import dkim

from mailhook.logs import get_logger

log = get_logger(__name__)

#: Headers covered by the signature; listing a header once more than it occurs (RFC 6376
#: §5.4.2 "over-signing") stops anyone appending a second copy after signing.
SIGNED_HEADERS = (
    b"from",
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"auto-submitted",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"reply-to",
)


class DkimSigner:
    """Signs messages of domains that have a key in ``key_dir``."""

    def __init__(self, key_dir: str, selector: str) -> None:
        self._dir = Path(key_dir) if key_dir else None
        self._selector = selector.encode()
        self._keys: dict[str, tuple[bytes, bytes] | None] = {}

    def _key(self, domain: str) -> tuple[bytes, bytes] | None:
        if domain not in self._keys:
            self._keys[domain] = self._load(domain)
        return self._keys[domain]

    def _load(self, domain: str) -> tuple[bytes, bytes] | None:
        if self._dir is None or "/" in domain or domain.startswith("."):
            return None
        for name, algorithm in (
            (f"{domain}.pem", b"rsa-sha256"),
            (f"{domain}.ed25519.pem", b"ed25519-sha256"),
        ):
            path = self._dir / name
            if path.is_file():
                return path.read_bytes(), algorithm
        return None

    def sign(self, data: bytes, domain: str) -> bytes:
        """``data`` with a DKIM-Signature prepended, or unchanged when the domain has no key."""
        key = self._key(domain.lower())
        if key is None:
            return data
        private, algorithm = key
        signature = dkim.sign(
            data,
            self._selector,
            domain.lower().encode(),
            private,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=algorithm,
            include_headers=list(SIGNED_HEADERS),
        )
        return bytes(signature) + data
