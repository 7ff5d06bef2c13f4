"""What the milter collected about one message, and what it decided: pure data, no I/O.

:class:`Collected` is the envelope, headers and (capped) body the MTA streamed to us.
:class:`Verdict` is what goes back at end-of-message: control headers to delete, headers to
add, a quarantine reason, and the final reply.

Control headers (``X-Mailhook-*``) are ours. A sender can write them too, so every copy that
arrived with the message is deleted before ours is added (DESIGN.md: "strip any inbound copy of
a control header before trusting it"): whatever reads them after the MTA (a Sieve script, mailhook
itself) can then trust that they came from this milter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

SCORE_HEADER = "X-Mailhook-Score"
RULES_HEADER = "X-Mailhook-Rules"
VERDICT_HEADER = "X-Mailhook-Verdict"
GUARD_HEADER = "X-Mailhook-Guard"

CONTROL_HEADERS = (SCORE_HEADER, RULES_HEADER, VERDICT_HEADER, GUARD_HEADER)
"""Every header this milter writes; inbound copies of any of them are deleted."""

TRUNCATED_RULE = "milter.truncated"
"""Listed in the rules when the message was larger than ``milter.max_message_bytes``: only its
beginning was scored or scanned."""

Final = Literal["continue", "tempfail"]


@dataclass
class Collected:
    """One message as the MTA streamed it to the milter."""

    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    size: int = 0
    """Bytes seen (headers and body), also those past the cap that were not kept."""
    truncated: bool = False
    queue_id: str = ""

    def raw(self) -> bytes:
        """The message as RFC 5322 text (headers as received, CRLF line ends), for the scanners."""
        lines = [name + b": " + _crlf(value) + b"\r\n" for name, value in self.headers]
        return b"".join(lines) + b"\r\n" + bytes(self.body)


def _crlf(value: bytes) -> bytes:
    # Postfix passes a folded header's line breaks as bare LF (milter8.c); put CRLF back.
    return value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Verdict:
    """What to tell the MTA at end-of-message."""

    delete: tuple[tuple[bytes, int], ...] = ()
    """(header name as received, index from 1) of each header to delete, highest index first."""
    add: tuple[tuple[str, str], ...] = ()
    quarantine: str | None = None
    reject: str | None = None
    """Refuse the message (``550 5.7.1`` with this text) instead of passing or holding it."""
    final: Final = "continue"


def control_header_deletions(headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[bytes, int], ...]:
    """Every inbound copy of a control header, as (name, index) deletions.

    The index counts headers of the same name, case-insensitively, from 1 (milter CHGHEADER).
    Deleting the highest index first keeps the lower indexes valid, whether or not the MTA
    renumbers after a deletion.
    """
    wanted = {name.lower() for name in CONTROL_HEADERS}
    seen: dict[bytes, int] = {}
    found: list[tuple[bytes, int]] = []
    for name, _ in headers:
        key = name.strip().lower()
        seen[key] = seen.get(key, 0) + 1
        if key.decode("ascii", "replace") in wanted:
            found.append((name, seen[key]))
    return tuple(sorted(found, key=lambda item: item[1], reverse=True))


def inbound_headers(score: int, rules: Iterable[str], verdict: str) -> tuple[tuple[str, str], ...]:
    """The score headers for an inbound message (rule ids only: never matched text)."""
    listed = sorted(set(rules))
    return (
        (SCORE_HEADER, str(score)),
        (RULES_HEADER, ", ".join(listed) if listed else "none"),
        (VERDICT_HEADER, verdict),
    )


def guard_header(outcome: str, rules: Iterable[str]) -> tuple[str, str]:
    """``X-Mailhook-Guard: would-hold; rules=cred.aws_key`` for an outbound message."""
    return GUARD_HEADER, f"{outcome}; rules={', '.join(sorted(set(rules))) or 'none'}"


def quarantine_reason(rules: Iterable[str]) -> str:
    """The reason Postfix logs with the hold (rule ids only)."""
    return f"mailhook outbound guard: {', '.join(sorted(set(rules)))}"
