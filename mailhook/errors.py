"""One exception hierarchy for mailhook, and the two places it is translated.

Every error mailhook raises on purpose is a :class:`MailhookError`. Doors, the API and the CLI
never invent their own status codes: the API asks :func:`http_status_for` and the mail doors ask
:func:`smtp_reply_for`. Anything that is *not* a ``MailhookError`` is unexpected and is treated as
a temporary failure (``451 4.3.0`` / HTTP 500) so that upstream retries and nothing is lost
(DESIGN.md invariant 1).
"""

from __future__ import annotations


class MailhookError(Exception):
    """Base of every deliberate mailhook error. ``str(exc)`` is safe to show to a client."""


class ConfigError(MailhookError):
    """The configuration is invalid or incomplete."""


class ValidationFailed(MailhookError):
    """Input from a client failed validation."""


class NotFound(MailhookError):
    """The thing asked for does not exist (or belongs to someone else)."""


class Unauthorized(MailhookError):
    """No or bad credentials."""


class Forbidden(MailhookError):
    """Authenticated, but not allowed to do this."""


class Conflict(MailhookError):
    """The request conflicts with existing state (duplicate handle, e-mail, ...)."""


class RateLimited(MailhookError):
    """Too many attempts in the current window."""


class QuotaExhausted(MailhookError):
    """No credits left."""


class PayloadTooLarge(MailhookError):
    """A message or request body is larger than the configured limit."""


# --- mail-path errors -------------------------------------------------------------------------


class TemporaryFailure(MailhookError):
    """Something that may work later: the upstream must retry (never a 5xx)."""


class StoreUnavailable(TemporaryFailure):
    """The database cannot be reached or refused the write."""


class ProviderUnavailable(TemporaryFailure):
    """The LLM provider is down, rate limited or timed out."""


class RelayUnavailable(TemporaryFailure):
    """The outbound relay refused or could not be reached; nothing was sent."""


class PermanentRejection(MailhookError):
    """The message or recipient will never be accepted; the sender gets a bounce."""


class UnknownRecipient(PermanentRejection):
    """No active mailbox for this address."""


class MessageTooLarge(PermanentRejection, PayloadTooLarge):
    """The message exceeds the size limit."""


class MalformedMessage(PermanentRejection, ValidationFailed):
    """The bytes cannot be understood as an RFC 5322 message."""


class RelayRejected(MailhookError):
    """The relay refused the reply permanently (5xx); retrying will not help."""


# --- the one HTTP map -------------------------------------------------------------------------

_HTTP_STATUS: tuple[tuple[type[MailhookError], int], ...] = (
    (MessageTooLarge, 413),
    (PayloadTooLarge, 413),
    (MalformedMessage, 400),
    (ValidationFailed, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (UnknownRecipient, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (QuotaExhausted, 402),
    (TemporaryFailure, 503),
    (ConfigError, 500),
)


def http_status_for(exc: BaseException) -> int:
    """HTTP status for an exception; unexpected ones are 500."""
    for kind, status in _HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 500


# --- the one SMTP/LMTP map (RFC 5321 reply codes, RFC 3463 enhanced status codes) -------------

_SMTP_REPLY: tuple[tuple[type[MailhookError], str], ...] = (
    (UnknownRecipient, "550 5.1.1 No such mailbox here"),
    (MessageTooLarge, "552 5.3.4 Message too big for system"),
    (MalformedMessage, "554 5.6.0 Message could not be parsed"),
    (StoreUnavailable, "451 4.3.0 Mail system temporarily unavailable, try again later"),
    (TemporaryFailure, "451 4.3.0 Temporary failure, try again later"),
)

#: What an unexpected exception becomes: temporary, so the MTA retries (DESIGN.md invariant 1).
SMTP_TEMPFAIL = "451 4.3.0 Temporary failure, try again later"


def smtp_reply_for(exc: BaseException) -> str:
    """SMTP/LMTP reply line for an exception. Anything unknown is a temporary failure."""
    for kind, reply in _SMTP_REPLY:
        if isinstance(exc, kind):
            return reply
    return SMTP_TEMPFAIL
