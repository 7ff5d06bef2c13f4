"""What a remote answer may name: a public DNS host name and a port in 1-65535.

Host names and ports come from untrusted XML and DNS; anything else (IP literals, ``localhost``,
single labels) is dropped so a remote document cannot point a mailbox's password at an address
of its choosing.
"""

from __future__ import annotations

import re

from mailhook.errors import ValidationFailed

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def public_hostname(text: str) -> str | None:
    """``text`` as a lower-case DNS host name (RFC 1123 letters, digits, hyphens), or None.

    IP literals, single labels (``localhost``, ``intranet``) and ``*.localhost`` are refused:
    a remote document must not point a mailbox's password at an address of its choosing.
    """
    host = text.strip().lower().removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or labels[-1].isdigit() or labels[-1] == "localhost":
        return None
    return host if all(_LABEL.fullmatch(label) for label in labels) else None


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
