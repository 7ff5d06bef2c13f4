"""The one shape every door hands to the spool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailhook.store.models import utcnow


@dataclass(frozen=True)
class Inbound:
    """A message as accepted by a door: envelope, raw bytes and where it came from."""

    source: str
    envelope_sender: str
    recipients: tuple[str, ...]
    raw: bytes
    received_at: datetime = field(default_factory=utcnow)
