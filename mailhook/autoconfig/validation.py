"""What a remote answer may name: a public DNS host name and a port in 1-65535.

Host names and ports come from untrusted XML and DNS; anything else (IP literals, ``localhost``,
single labels) is dropped so a remote document cannot point a mailbox's password at an address
of its choosing.
"""

from __future__ import annotations

from mailhook.errors import ValidationFailed
from mailhook.net.names import host_name


def public_hostname(text: str) -> str | None:
    """``text`` as a lower-case DNS host name (RFC 1123 letters, digits, hyphens), or None.

    IP literals, single labels (``localhost``, ``intranet``) and ``*.localhost`` are refused:
    a remote document must not point a mailbox's password at an address of its choosing.
    """
    host = host_name(text)
    if host is None or "." not in host or host.endswith(".localhost"):
        return None
    return host


def port_number(text: str) -> int | None:
    """``text`` as a TCP port in 1-65535, or None."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def domain_of(address: str) -> str:
    """The domain of an e-mail address; :class:`ValidationFailed` unless it is a public DNS name."""
    domain = public_hostname(address.rpartition("@")[2])
    if domain is None:
        raise ValidationFailed("the e-mail address's domain is not a public DNS name")
    return domain
