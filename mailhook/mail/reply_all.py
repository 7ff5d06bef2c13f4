"""Who a reply goes to. The model never picks recipients: this module is the only source.

RFC 5322 §3.6.3: a reply goes to the Reply-To addresses if there are any, else to From; a
"reply all" also copies the original To and Cc. The agent's own mailbox and its aliases are never
a recipient (that would mail ourselves and start a loop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .addresses import normalize_address
from .parse import ParsedMessage


@dataclass(frozen=True, slots=True)
class Recipients:
    """Header recipients of a reply; there is deliberately no Bcc."""

    to: tuple[str, ...]
    cc: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """To then Cc: the RFC 5321 envelope recipients (RCPT TO)."""
        return self.to + self.cc


def _unique(addresses: Iterable[str], excluded: set[str]) -> tuple[str, ...]:
    """Normalized ``addresses`` minus ``excluded``, first occurrence kept; updates ``excluded``."""
    kept: list[str] = []
    for address in addresses:
        addr = normalize_address(address)
        if addr and addr not in excluded:
            excluded.add(addr)
            kept.append(addr)
    return tuple(kept)


def reply_recipients(
    msg: ParsedMessage,
    *,
    mailbox_address: str,
    own_aliases: Iterable[str] = (),
    reply_all: bool = True,
) -> Recipients:
    """To/Cc of the reply to ``msg``; empty when the message names nobody to answer."""
    own = {normalize_address(a) for a in (mailbox_address, *own_aliases)} - {""}
    excluded = set(own)
    to = _unique(msg.reply_to or ((msg.from_addr,) if msg.from_addr else ()), excluded)
    if not to:
        # Copying the others without answering the author would be a strange mail: send none.
        return Recipients(to=(), cc=())
    cc = _unique((*msg.to, *msg.cc), excluded) if reply_all else ()
    return Recipients(to=to, cc=cc)
