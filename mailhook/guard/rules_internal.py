"""Outbound rules, internal-system family: private addresses, internal host names, file paths.

These tell an outsider how the owner's systems are laid out. Generic findings (a private IP, a
``.internal`` name, a server path) are ``medium``: they are often harmless ("restart the router
at 192.168.1.1"). Host names the owner configured as internal are ``high``: the owner said so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from .rule import HIGH, MEDIUM, Rule

# RFC 1918 private-use, RFC 6598 shared (CGNAT), RFC 1122 loopback, RFC 3927 link-local; IPv6
# RFC 4193 unique local, RFC 4291 link-local and loopback.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


def is_private_address(value: str) -> bool:
    """True for an IPv4/IPv6 literal inside one of the private or local ranges above."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in _PRIVATE_NETWORKS)


# Special-use names that never resolve on the internet: RFC 6762 .local, RFC 8375 home.arpa,
# ICANN's reserved .internal (2024), and the de-facto corp/lan/intranet/localdomain suffixes.
_INTERNAL_SUFFIXES = r"(?:internal|intranet|corp|lan|local|localdomain|home\.arpa)"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

INTERNAL_RULES: tuple[Rule, ...] = (
    Rule(
        "internal.private_ip",
        MEDIUM,
        re.compile(
            r"(?<![\w.])(?P<v4>(?:\d{1,3}\.){3}\d{1,3})(?![\w]|\.\d)"
            r"|(?i:(?<![\w:.])(?P<v6>(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?![\w:.]))"
        ),
        validate=is_private_address,
    ),
    Rule(
        "internal.private_hostname",
        MEDIUM,
        re.compile(rf"(?i:(?<![\w.-])(?:{_LABEL}\.)+{_INTERNAL_SUFFIXES})(?![\w-]|\.\w)"),
    ),
    Rule(
        "internal.file_path",
        MEDIUM,
        re.compile(
            # A server path must start a token: "example.com/home/x" is a URL, not a path.
            r"(?<![\w/.~:-])/(?:etc|home|var|root|usr|opt|srv|mnt|proc|Users|private/etc)/[\w.@+-]+"
            r"|(?i:\b[a-z]:\\(?:users|windows|program files|programdata|inetpub|documents and settings)\\)"
            r"|(?<![\w\\])\\\\[\w.-]+\\[\w$.-]+"
            r"|~/\.(?:ssh|aws|gnupg|kube|docker|config|npmrc|netrc|env)\b"
        ),
    ),
)
"""The generic internal-system family, in the order findings are reported."""


def _hostname_pattern(entry: str) -> str | None:
    """Regex for one configured name: ``db1.corp.example`` exact, ``*.corp.example`` any subdomain."""
    name = entry.strip().lower().rstrip(".")
    wildcard = name.startswith("*.")
    name = name.removeprefix("*.").lstrip(".")
    if not name:
        return None
    escaped = re.escape(name)
    return rf"(?:{_LABEL}\.)+{escaped}" if wildcard else escaped


def hostname_rule(hostnames: Iterable[str]) -> Rule | None:
    """``internal.hostname`` (high) for the owner's configured internal names; None if there are none.

    An entry is matched as a whole host name, case-insensitively; ``*.example.internal`` matches
    every subdomain (but not ``example.internal`` itself, so a public apex can stay public).
    """
    patterns = [p for p in (_hostname_pattern(h) for h in hostnames) if p]
    if not patterns:
        return None
    alternatives = "|".join(sorted(set(patterns), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-]|\.\w)", re.IGNORECASE)
    return Rule("internal.hostname", HIGH, pattern)
