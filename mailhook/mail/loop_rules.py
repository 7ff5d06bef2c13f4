"""Decides whether a message may get an automatic reply at all (RFC 3834 etiquette).

This runs before any model call (DESIGN.md invariant 4: no loops, no storms). Each rule answers
with a short machine-readable reason that ends up in activity metadata; ``None`` means a reply is
allowed. Rules only look at headers and the SMTP envelope, never at the body.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .addresses import normalize_address
from .parse import ParsedMessage

# RFC 3834 §2: do not answer mail from senders that are not people. Local parts are compared
# lower-case and without a "+detail" suffix ("noreply+123@x").
_SYSTEM_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailer_daemon", "postmaster"}
    | {"noreply", "no-reply", "no_reply", "do-not-reply", "do_not_reply", "donotreply"}
)
# RFC 3834 §3.1.8 (and RFC 2076): Precedence values used by lists and bulk senders.
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
# RFC 2369 list command fields, RFC 2919 List-Id, RFC 8058 one-click unsubscribe.
_LIST_HEADERS = (
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-help",
    "list-owner",
    "list-archive",
)
# [MS-OXCMAIL] §2.2.3.2.14: X-Auto-Response-Suppress values that forbid an automatic reply.
_SUPPRESS_TOKENS = frozenset({"all", "autoreply", "oof"})
_COMMENT = re.compile(r"\([^()]*\)")


def _first_token(value: str) -> str:
    """Lower-case first token of a structured value, comments and parameters removed."""
    return _COMMENT.sub(" ", value).split(";", 1)[0].strip().lower()


def _local_part(addr: str) -> str:
    local = normalize_address(addr).rpartition("@")[0] or normalize_address(addr)
    return local.strip('"').split("+", 1)[0]


def _auto_submitted(msg: ParsedMessage) -> bool:
    # RFC 3834 §5: any Auto-Submitted value other than "no" marks an automatic message.
    return any(_first_token(value) != "no" for value in msg.header_all("auto-submitted"))


def _system_sender(msg: ParsedMessage, envelope_sender: str) -> bool:
    senders = (envelope_sender, msg.from_addr)
    return any(s and _local_part(s) in _SYSTEM_LOCAL_PARTS for s in senders)


def _bulk_precedence(msg: ParsedMessage) -> bool:
    return any(_first_token(v) in _BULK_PRECEDENCE for v in msg.header_all("precedence"))


def _list_mail(msg: ParsedMessage) -> bool:
    # RFC 3834 §2 asks responders not to answer list traffic; RFC 2369/2919 headers mark it.
    return any(msg.header(name) is not None for name in _LIST_HEADERS)


def _response_suppressed(msg: ParsedMessage) -> bool:
    for value in msg.header_all("x-auto-response-suppress"):
        tokens = {token.strip().lower() for token in value.split(",")}
        if tokens & _SUPPRESS_TOKENS:
            return True
    return False


def _own_address(msg: ParsedMessage, envelope_sender: str, mailbox_address: str) -> bool:
    mailbox = normalize_address(mailbox_address)
    senders = {normalize_address(envelope_sender), msg.from_addr}
    return bool(mailbox) and mailbox in senders


def auto_reply_refusal(msg: ParsedMessage, *, envelope_sender: str, mailbox_address: str) -> str | None:
    """Why ``msg`` must not be answered automatically, or None if a reply is allowed."""
    envelope = normalize_address(envelope_sender)
    rules: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("auto-submitted", lambda: _auto_submitted(msg)),
        # RFC 3834 §2 / RFC 5321 §4.5.5: a null reverse-path is a bounce or other notification.
        ("null-sender", lambda: not envelope),
        ("system-sender", lambda: _system_sender(msg, envelope)),
        ("precedence-bulk", lambda: _bulk_precedence(msg)),
        ("list-mail", lambda: _list_mail(msg)),
        ("auto-response-suppressed", lambda: _response_suppressed(msg)),
        ("own-address", lambda: _own_address(msg, envelope, mailbox_address)),
    )
    return next((reason for reason, broken in rules if broken()), None)
