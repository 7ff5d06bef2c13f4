"""The syntax of a DNS host name (RFC 1123 section 2.1): one normal form for every place that takes one."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def host_name(text: str) -> str | None:
    """``text`` lower-cased without a trailing dot if it is a host name, else None.

    Labels are letters, digits and inner hyphens (RFC 1123); IDNs come in as punycode. A
    top-level label of digits only is refused: ``10.0.0.1`` is an address, not a name
    (RFC 1123 section 2.1 asks that a name never look like a dotted-decimal address).
    """
    host = text.strip().lower().removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or labels[-1].isdigit():
        return None
    return host if all(_LABEL.fullmatch(label) for label in labels) else None
