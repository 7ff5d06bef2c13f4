"""Structured logging: JSON lines, the Message-ID bound to each line, secrets and bodies scrubbed.

Invariant 3 of DESIGN.md says logs never hold bodies or secrets. Two layers enforce it here,
whatever a caller passes:

* keys that name content or credentials (``body``, ``password``, ``api_key`` ...) are replaced
  by ``[redacted]`` before rendering;
* every configured secret value (see :meth:`Settings.secret_values`) and anything shaped like a
  bearer token is cut out of every string that reaches the renderer, including stdlib records
  from libraries.

aiosmtpd logs each DATA line at DEBUG on the ``mail.log`` logger; it is pinned to WARNING so a
debug run cannot spill a message body.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

#: Keys whose values are never logged. Compared lower-case, also as a suffix (``relay_password``).
SENSITIVE_KEYS = frozenset(
    {
        "body",
        "raw",
        "content",
        "text",
        "html",
        "reply",
        "reply_text",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "key",
        "credentials",
        "persona",
    }
)

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Add values to scrub from every log line (only non-trivial ones: 6+ characters)."""
    _secrets.update(v for v in values if v and len(v) >= 6)


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or any(lowered.endswith("_" + s) for s in SENSITIVE_KEYS)


def scrub(text: str) -> str:
    """Remove registered secrets and bearer tokens from a string."""
    for value in _secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return _BEARER.sub(r"\1 " + REDACTED, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {k: REDACTED if _is_sensitive(str(k)) else _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: drop sensitive keys and scrub every string value."""
    event_dict.pop("color_message", None)  # uvicorn's ANSI duplicate of "event"
    for key in list(event_dict):
        if key != "event" and _is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub_value(event_dict[key])
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one redacting JSON (or console) renderer."""
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # filter_by_level first: a message below the level costs one check, not the whole chain.
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs every DATA line at DEBUG: never let that through (invariant 3).
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO: a document or webhook URL may carry a token.
    for noisy in ("aiosqlite", "asyncio", "sqlalchemy.engine.Engine", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    """A structlog logger for a module."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def message_context(**values: Any) -> Iterator[None]:
    """Bind values (``message_id``, ``mailbox``, ``job``) to every log line inside the block."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def context_snapshot() -> MutableMapping[str, Any]:
    """What is bound right now (for tests and error reports)."""
    return structlog.contextvars.get_contextvars()
