"""The production :class:`~mailhook.autoconfig.model.DnsLookup`: SRV and MX questions over
dnspython's asyncio resolver, with "no such name/record" as an empty answer and every other
failure as :class:`~mailhook.autoconfig.model.LookupFailed`.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
from dns.rdata import Rdata
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.IN.SRV import SRV

from mailhook.autoconfig.model import DNS_LIFETIME, LookupFailed, MxRecord, SrvRecord


class DnsPythonLookup:
    """:class:`DnsLookup` over dnspython's asyncio resolver (the system's resolv.conf by default)."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver | None = None, *, lifetime: float = DNS_LIFETIME
    ) -> None:
        self._resolver = resolver
        self._lifetime = lifetime

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                self._resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise LookupFailed("no DNS resolver is configured on this machine") from None
        return self._resolver

    async def _records(self, name: str, rdtype: str) -> list[Rdata]:
        try:
            answer = await self._get().resolve(name, rdtype, lifetime=self._lifetime, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise LookupFailed(f"DNS {rdtype} lookup of {name} timed out") from None
        except dns.exception.DNSException:
            raise LookupFailed(f"DNS {rdtype} lookup of {name} failed") from None
        return list(answer)

    async def srv(self, name: str) -> list[SrvRecord]:
        """SRV records at ``name``; the root target is given as ``"."``."""
        rows = await self._records(name, "SRV")
        return [
            SrvRecord(r.priority, r.weight, r.port, _name_text(r.target)) for r in rows if isinstance(r, SRV)
        ]

    async def mx(self, domain: str) -> list[MxRecord]:
        """MX records of ``domain``; a null MX's exchange is ``"."``."""
        rows = await self._records(domain, "MX")
        return [MxRecord(r.preference, _name_text(r.exchange)) for r in rows if isinstance(r, MX)]


def _name_text(name: dns.name.Name) -> str:
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)
