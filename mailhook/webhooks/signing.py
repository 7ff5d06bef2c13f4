"""The ``Mailhook-Signature`` header: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

The timestamp is inside the MAC so a captured request cannot be replayed later with a new one;
receivers compare in constant time and refuse old timestamps (docs/webhooks.md has the recipe).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"  # noqa: S105 -- a prefix, not a secret
SIGNATURE_HEADER = "Mailhook-Signature"
EVENT_HEADER = "Mailhook-Event"
DELIVERY_HEADER = "Mailhook-Delivery"


def new_secret() -> str:
    """A fresh signing secret (256 bits), shown to its owner once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed now (or at ``timestamp``)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={signature(secret, body, moment)}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: int | None = None) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` within ``tolerance`` seconds."""
    fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        moment = int(fields.get("t", ""))
    except ValueError:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - moment) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, body, moment), fields.get("v1", ""))
