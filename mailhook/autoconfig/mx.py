"""The last step of discovery: the domain's MX hosts name a known provider, or the settings
are guessed as ``imap.<domain>``/``smtp.<domain>`` and the notes say so.
"""

from __future__ import annotations

from mailhook.autoconfig.model import DnsLookup, Found
from mailhook.autoconfig.presets import from_preset, guess_servers, preset_for_mx_host
from mailhook.autoconfig.validation import public_hostname


async def mx_step(dns_lookup: DnsLookup, domain: str, address: str) -> Found:
    """A known provider's settings when one of the MX hosts is theirs, else the guess."""
    records = sorted(await dns_lookup.mx(domain), key=lambda r: r.preference)
    if any(r.exchange.strip() in (".", "") for r in records):
        return guess_servers(domain, address, f"{domain} publishes a null MX (RFC 7505): it receives no mail")
    hosts = [h for h in (public_hostname(r.exchange) for r in records) if h is not None]
    for host in hosts:
        preset = preset_for_mx_host(host)
        if preset is not None:
            found = from_preset(preset, "mx-guess", address)
            found.notes.insert(0, f"{domain}'s mail is handled by {preset.name} (MX {host}).")
            return found
    why = f"{domain} has no MX records" if not hosts else "no published settings were found"
    return guess_servers(domain, address, why)
