"""SRV discovery of IMAP and submission servers (RFC 6186, RFC 8314): the record order of
RFC 2782 and the choice of the best server across the TLS and STARTTLS services.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Final, Literal

from mailhook.autoconfig.model import DnsLookup, Found, Security, Server, SrvRecord
from mailhook.autoconfig.validation import public_hostname

#: (service label, security), implicit TLS first (RFC 8314 section 3).
IMAP_SERVICES: Final[tuple[tuple[str, Security], ...]] = (("_imaps._tcp", "ssl"), ("_imap._tcp", "starttls"))
SUBMISSION_SERVICES: Final[tuple[tuple[str, Security], ...]] = (
    ("_submissions._tcp", "ssl"),
    ("_submission._tcp", "starttls"),
)


def order_srv(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782's order: lowest priority first; within one priority, a weighted random order.

    Per the RFC, weight-0 records go first in the running sum, so they are picked only when the
    random number is 0, i.e. rarely while heavier records remain.
    """
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)
        while group:
            pick = rng.randint(0, sum(record.weight for record in group))
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    ordered.append(group.pop(index))
                    break
    return ordered


async def srv_step(
    dns_lookup: DnsLookup,
    domain: str,
    services: tuple[tuple[str, Security], ...],
    kind: Literal["imap", "smtp"],
    address: str,
    rng: random.Random,
) -> Found:
    """The best server of the services, honouring priority across them (RFC 6186 section 3.4)."""
    answers = await asyncio.gather(*(dns_lookup.srv(f"{label}.{domain}") for label, _ in services))
    candidates: list[tuple[int, int, SrvRecord, Security]] = []
    declined = []
    for rank, ((label, security), records) in enumerate(zip(services, answers, strict=True)):
        # A target of "." says the service is decidedly not available here (RFC 2782).
        offered = [r for r in records if r.target.strip() not in (".", "")]
        if records and not offered:
            declined.append(label)
        candidates += [(r.priority, rank, r, security) for r in order_srv(offered, rng)]
    found = Found()
    if declined:
        found.notes.append(f"{domain} says in DNS that it does not offer {', '.join(declined)}.")
    # Lowest priority wins across both services; on a tie, implicit TLS (the lower rank).
    for _, _, record, security in sorted(candidates, key=lambda c: (c[0], c[1])):
        host = public_hostname(record.target)
        if host is None or not 1 <= record.port <= 65535:
            continue
        setattr(found, kind, Server(host, record.port, security, "srv", address))
        if host != domain and not host.endswith(f".{domain}"):
            # Unsigned DNS answers can be forged (RFC 6186 section 6): let the user confirm.
            found.notes.append(
                f"DNS points {kind.upper()} for {domain} to {host}, outside the domain: confirm it "
                "with your provider before saving."
            )
        break
    return found
