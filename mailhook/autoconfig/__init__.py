"""Finds the IMAP and SMTP settings of an e-mail address, so connecting a mailbox needs only a password.

:func:`discover` answers, for each of IMAP and SMTP submission, with the first of these that knows:

1. **preset**: a built-in table of large providers, by the address's domain (no network at all);
2. **autoconfig**: Mozilla's ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=...``;
3. **well-known**: ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``;
4. **srv**: RFC 6186 SRV records ``_imaps._tcp``/``_imap._tcp`` and, for submission, RFC 8314's
   ``_submissions._tcp`` and RFC 6186's ``_submission._tcp``;
5. **mx-guess**: the domain's MX hosts: mail handled by a known provider (Google, Microsoft,
   Fastmail, ...) gets that provider's settings; otherwise ``imap.<domain>``/``smtp.<domain>``, a
   low-confidence guess said so in the notes.

Steps 2-5 run concurrently under one deadline (:data:`DISCOVERY_TIMEOUT`); the answer still follows
the order above, and discovery stops as soon as both answers are settled. What remote servers
say is untrusted: documents are fetched only through :func:`mailhook.net.fetch.fetch_document`
(SSRF-safe, size cap, short deadline) over HTTPS, parsed with defusedxml with any DTD refused (so
no entity is ever expanded or resolved), and every host name from XML or DNS must be a plain DNS
name (no IP literal, no ``localhost``) with a port in 1-65535. Only TLS is offered: implicit TLS
(``ssl``, RFC 8314) or STARTTLS, never a plain-text connection that would carry the password.

The DNS resolver (:class:`DnsLookup`) and the document fetcher (:data:`Fetcher`) are parameters,
so tests never reach a real DNS server or web host.

The package's modules, by role:

* :mod:`~mailhook.autoconfig.model`: the result, DNS records, errors, limits and the two seams;
* :mod:`~mailhook.autoconfig.validation`: the host-name and port checks on untrusted answers;
* :mod:`~mailhook.autoconfig.presets`: the provider table, the MX-to-provider table, the guess;
* :mod:`~mailhook.autoconfig.mozilla`: autoconfig document URLs, safe fetching and parsing;
* :mod:`~mailhook.autoconfig.srv` and :mod:`~mailhook.autoconfig.mx`: the DNS steps;
* :mod:`~mailhook.autoconfig.resolver`: :class:`DnsPythonLookup`, the real DNS resolver;
* :mod:`~mailhook.autoconfig.discovery`: :func:`discover`, the steps under one deadline.
"""

from __future__ import annotations

from mailhook.autoconfig.discovery import discover
from mailhook.autoconfig.model import (
    DISCOVERY_TIMEOUT,
    AutoconfigInvalid,
    AutoconfigResult,
    DnsLookup,
    Fetcher,
    LookupFailed,
    MxRecord,
    Server,
    SrvRecord,
)
from mailhook.autoconfig.mozilla import parse_autoconfig, safe_fetcher
from mailhook.autoconfig.presets import PRESETS
from mailhook.autoconfig.resolver import DnsPythonLookup
from mailhook.autoconfig.srv import order_srv

# Not part of the public API, but the tests check host names with it.
from mailhook.autoconfig.validation import public_hostname as public_hostname

__all__ = [
    "DISCOVERY_TIMEOUT",
    "PRESETS",
    "AutoconfigInvalid",
    "AutoconfigResult",
    "DnsLookup",
    "DnsPythonLookup",
    "Fetcher",
    "LookupFailed",
    "MxRecord",
    "Server",
    "SrvRecord",
    "discover",
    "order_srv",
    "parse_autoconfig",
    "safe_fetcher",
]
