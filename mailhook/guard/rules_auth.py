"""Inbound rules from the header section: the local MTA's authentication verdicts, and anomalies.

``Authentication-Results`` (RFC 8601) carries the SPF (RFC 7208), DKIM (RFC 6376) and DMARC
(RFC 7489) results of the server that added it. Anyone can add such a header to the mail they
send, so only a header whose authserv-id names one of *our* servers counts (RFC 8601 §5: a
receiver must not trust results from an authserv-id it does not know). The rules only ever add
score for a failure: a forged "pass" cannot lower it. Which trusted headers to read is therefore
simple: all of them, failures are unioned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailhook.mail.addresses import domain_of
from mailhook.mail.parse import ParsedMessage

from .rules_links import org_domain

AUTH_WEIGHTS: dict[str, int] = {
    "auth.spf_fail": 15,
    "auth.spf_softfail": 5,
    "auth.dkim_fail": 15,
    "auth.dmarc_fail": 25,
    "header.no_message_id": 5,
    "header.no_from": 10,
    "header.reply_to_mismatch": 10,
}
"""Weights of the authentication and header rules."""

# RFC 8601 §2.2: resinfo = method [ "/" version ] "=" result ...
_RESINFO = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class AuthResults:
    """One parsed Authentication-Results header: who added it and method → results."""

    authserv_id: str
    results: dict[str, tuple[str, ...]]


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 §3.2.2 comments (nested, with quoted-pairs), keeping quoted strings."""
    out: list[str] = []
    depth = 0
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split_semicolons(value: str) -> list[str]:
    """Split on ";" outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_authentication_results(value: str) -> AuthResults:
    """Parse one header value; a garbled one yields what could be read (never raises)."""
    parts = _split_semicolons(_strip_comments(value))
    head = parts[0].split()
    authserv_id = head[0].strip('"').lower() if head else ""
    results: dict[str, list[str]] = {}
    for resinfo in parts[1:]:
        if match := _RESINFO.match(resinfo):
            results.setdefault(match.group(1).lower(), []).append(match.group(2).lower())
    return AuthResults(authserv_id, {method: tuple(found) for method, found in results.items()})


def trusted_results(message: ParsedMessage, trusted_authserv_ids: Iterable[str]) -> dict[str, set[str]]:
    """Method → results of the headers added by a trusted authserv-id (case-insensitive)."""
    trusted = {t.strip().lower() for t in trusted_authserv_ids if t.strip()}
    merged: dict[str, set[str]] = {}
    if not trusted:
        return merged
    for value in message.header_all("authentication-results"):
        parsed = parse_authentication_results(value)
        if parsed.authserv_id in trusted:
            for method, found in parsed.results.items():
                merged.setdefault(method, set()).update(found)
    return merged


def auth_rules(message: ParsedMessage, trusted_authserv_ids: Iterable[str]) -> list[str]:
    """``auth.*`` rules from the trusted Authentication-Results headers."""
    results = trusted_results(message, trusted_authserv_ids)
    spf, dkim, dmarc = results.get("spf", set()), results.get("dkim", set()), results.get("dmarc", set())
    fired = []
    if "fail" in spf:
        fired.append("auth.spf_fail")
    elif "softfail" in spf:
        fired.append("auth.spf_softfail")
    # A mailing list that breaks one signature while another verifies is normal (RFC 6376 §4.2).
    if "fail" in dkim and "pass" not in dkim:
        fired.append("auth.dkim_fail")
    if "fail" in dmarc:
        fired.append("auth.dmarc_fail")
    return fired


def header_rules(message: ParsedMessage) -> list[str]:
    """``header.*`` anomalies: no Message-ID (RFC 5322 §3.6.4 SHOULD), no usable From, and a
    Reply-To that sends answers to another organization than the one in From.
    """
    fired = []
    if not message.message_id:
        fired.append("header.no_message_id")
    sender = domain_of(message.from_addr)
    if not sender:
        fired.append("header.no_from")
    reply_domains = {domain_of(addr) for addr in message.reply_to} - {""}
    if sender and any(org_domain(d) != org_domain(sender) for d in reply_domains):
        fired.append("header.reply_to_mismatch")
    return fired
