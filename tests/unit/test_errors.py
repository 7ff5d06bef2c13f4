"""One exception hierarchy, one HTTP map, one SMTP map; unknown errors are temporary."""

from __future__ import annotations

import pytest

from mailhook import errors as e


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (e.ValidationFailed("x"), 400),
        (e.MalformedMessage("x"), 400),
        (e.Unauthorized("x"), 401),
        (e.QuotaExhausted("x"), 402),
        (e.Forbidden("x"), 403),
        (e.NotFound("x"), 404),
        (e.Conflict("x"), 409),
        (e.MessageTooLarge("x"), 413),
        (e.RateLimited("x"), 429),
        (e.StoreUnavailable("x"), 503),
        (RuntimeError("boom"), 500),
    ],
)
def test_http_status(exc: Exception, status: int) -> None:
    assert e.http_status_for(exc) == status


@pytest.mark.parametrize(
    ("exc", "reply"),
    [
        (e.UnknownRecipient(), "550 5.1.1"),
        (e.MessageTooLarge(), "552 5.3.4"),
        (e.StoreUnavailable(), "451 4.3.0"),
        (e.ProviderUnavailable(), "451 4.3.0"),
        (KeyError("surprise"), "451 4.3.0"),
        (e.ValidationFailed("x"), "451 4.3.0"),
    ],
)
def test_smtp_reply(exc: Exception, reply: str) -> None:
    assert e.smtp_reply_for(exc).startswith(reply)


def test_unexpected_errors_are_never_permanent() -> None:
    for exc in (ValueError(), OSError(), e.MailhookError(), e.RelayRejected("x")):
        assert e.smtp_reply_for(exc)[0] == "4"
