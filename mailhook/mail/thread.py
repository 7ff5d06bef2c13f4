"""Threading of replies: subject, In-Reply-To and References (RFC 5322 §3.6.4-5).

Mail clients group a conversation by these fields, so a reply must carry them exactly; the same
ids are what the store looks a thread up by.
"""

from __future__ import annotations

import re

from .headers import parse_msg_ids, strip_controls
from .parse import ParsedMessage

# RFC 5322 §3.6.5 suggests "Re: "; clients in other languages write their own reply prefix
# (German "AW", Nordic "SV", Dutch "Antw", Polish "Odp", Turkish "YNT", Italian "RIF", Chinese
# "回复"/"答复"), optionally with a counter ("Re[2]:", "RE(3):"). Forward prefixes are kept.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|antw|odp|ynt|rif|回复|答复)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)
# RFC 5322 does not cap References; we keep the root and the most recent ids, as many clients do.
MAX_REFERENCES = 20


def reply_subject(subject: str) -> str:
    """ "Re: " + ``subject`` with existing reply prefixes removed (no "Re: Re:" stacking)."""
    text = strip_controls(subject)
    while True:
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return f"Re: {text}" if text else "Re:"


def _cap(ids: list[str]) -> tuple[str, ...]:
    if len(ids) <= MAX_REFERENCES:
        return tuple(ids)
    return (ids[0], *ids[-(MAX_REFERENCES - 1) :])


def threading_headers(parent: ParsedMessage) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for a reply to ``parent``, per RFC 5322 §3.6.4."""
    refs = list(parent.references)
    if not refs:
        # §3.6.4: without References, a parent In-Reply-To holding exactly one id stands in.
        reply_ids = parse_msg_ids(" ".join(parent.header_all("in-reply-to")))
        if len(reply_ids) == 1:
            refs = [reply_ids[0]]
    if parent.message_id:
        refs = [ref for ref in refs if ref != parent.message_id]
        refs.append(parent.message_id)
    return parent.message_id, _cap(refs)


def thread_ids(msg: ParsedMessage) -> tuple[str, ...]:
    """Every id that ties ``msg`` to a thread (References, In-Reply-To, own id), deduplicated."""
    ids = (*msg.references, msg.in_reply_to, msg.message_id)
    return tuple(dict.fromkeys(i for i in ids if i))
