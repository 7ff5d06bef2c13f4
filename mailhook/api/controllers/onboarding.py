"""Onboarding: find an address's IMAP/SMTP settings, test them before saving, and create many
mailboxes from one CSV file.

``GET /api/v1/email-autoconfig?email=`` runs :func:`mailhook.autoconfig.discover`. It makes
outbound DNS and HTTPS requests on the caller's behalf, so it needs a bearer token and is rate
limited per user (:data:`AUTOCONFIG_PER_MINUTE` in a sliding minute, counted in this process: a
cluster of N nodes allows up to N times that, which is fine for a limit that only stops a script
from using the server as a lookup relay). Tests and embedders replace the discovery function by
putting another one in ``app.state[DISCOVER_STATE_KEY]``.

``POST /api/v1/mailboxes/connection-test`` tries an external mailbox's IMAP and SMTP settings
(:mod:`mailhook.autoconfig.probe`) and answers per protocol; nothing is stored. It logs in to a
third-party server with a password the caller sends, so it is a password oracle: a bearer token,
:data:`CONNECTION_TESTS_PER_WINDOW` tests per user in :data:`CONNECTION_TEST_WINDOW` seconds, a
body of at most :data:`CONNECTION_TEST_MAX_BYTES`, and the same SSRF host check as the IMAP
door. Tests replace the probe through ``app.state[PROBE_STATE_KEY]``.

``POST /api/v1/mailboxes/batch?kind=hosted|external`` takes the CSV (``text/csv``, at most
1 MiB: 413 past it) described in :mod:`mailhook.store.batch`. A file that cannot be used is a
plain ``400`` before anything is created; otherwise the answer is ``200`` with an NDJSON stream,
one line per row as soon as that row is done, then one summary line, so a UI can draw a progress
bar. docs/api.md is the reference.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any, Final, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, JSONBody, RawBody
from litestar.response import Stream

from mailhook.api.auth import current_user
from mailhook.api.controllers.mailboxes import provide_mailboxes
from mailhook.autoconfig import AutoconfigResult, discover
from mailhook.autoconfig.probe import ConnectionProbe, ProbeReport
from mailhook.errors import RateLimited, ValidationFailed
from mailhook.logs import get_logger
from mailhook.services import Services
from mailhook.store.batch import MAX_CSV_BYTES, BatchRow, import_rows, parse_batch_csv
from mailhook.store.mailboxes import Mailboxes
from mailhook.store.models import User
from mailhook.store.servers import MailServers

log = get_logger(__name__)

#: ``app.state`` key of the discovery function (``email -> AutoconfigResult``).
DISCOVER_STATE_KEY: Final = "email_autoconfig"
_LIMITER_STATE_KEY: Final = "email_autoconfig_limiter"
AUTOCONFIG_PER_MINUTE: Final = 10
#: ``app.state`` key of the :class:`ConnectionProbe` (built from the settings when absent).
PROBE_STATE_KEY: Final = "connection_probe"
_PROBE_LIMITER_STATE_KEY: Final = "connection_test_limiter"
CONNECTION_TESTS_PER_WINDOW: Final = 10
CONNECTION_TEST_WINDOW: Final = 600.0
CONNECTION_TEST_MAX_BYTES: Final = 16 * 1024
CSV_TYPES: Final = frozenset({"text/csv", "text/plain", "application/csv"})

Discoverer = Callable[[str], Awaitable[AutoconfigResult]]


class PerUserLimit:
    """At most ``limit`` calls per ``window`` seconds per user (a sliding window, in memory)."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        what: str = "look-ups a minute",
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._what = what
        self._calls: dict[int, deque[float]] = {}

    def check(self, user_id: int) -> None:
        """Count a call, or :class:`RateLimited` (429) if the user is at the limit."""
        now = self._clock()
        calls = self._calls.setdefault(user_id, deque())
        while calls and calls[0] <= now - self._window:
            calls.popleft()
        if len(calls) >= self._limit:
            wait = max(1, round(calls[0] + self._window - now))
            raise RateLimited(f"at most {self._limit} {self._what}; try again in {wait} s")
        calls.append(now)


def _limiter(state: State) -> PerUserLimit:
    limiter = state.get(_LIMITER_STATE_KEY)
    if not isinstance(limiter, PerUserLimit):
        limiter = PerUserLimit(AUTOCONFIG_PER_MINUTE)
        state[_LIMITER_STATE_KEY] = limiter
    return limiter


def _probe_limiter(state: State) -> PerUserLimit:
    limiter = state.get(_PROBE_LIMITER_STATE_KEY)
    if not isinstance(limiter, PerUserLimit):
        minutes = round(CONNECTION_TEST_WINDOW / 60)
        limiter = PerUserLimit(
            CONNECTION_TESTS_PER_WINDOW, CONNECTION_TEST_WINDOW, what=f"connection tests in {minutes} minutes"
        )
        state[_PROBE_LIMITER_STATE_KEY] = limiter
    return limiter


def _probe(state: State) -> ConnectionProbe:
    probe = state.get(PROBE_STATE_KEY)
    if not isinstance(probe, ConnectionProbe):
        services: Services = state.services
        probe = ConnectionProbe(services.settings.imap)
        state[PROBE_STATE_KEY] = probe
    return probe


class ConnectionTestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /mailboxes/connection-test``: the server fields of an external mailbox."""

    imap_host: str
    imap_port: int = 993
    smtp_host: str
    smtp_port: int = 465
    login: str
    password: str

    def __repr__(self) -> str:
        return f"ConnectionTestIn(imap_host={self.imap_host!r}, smtp_host={self.smtp_host!r})"

    def servers(self) -> MailServers:
        """The fields checked as mailbox creation checks them (400 otherwise)."""
        return MailServers.of(self).checked()


class OnboardingController(Controller):
    """``/api/v1/email-autoconfig`` and ``/api/v1/mailboxes/batch``."""

    path = "/api/v1"
    dependencies = {
        "user": Provide(current_user),
        "mailboxes": Provide(provide_mailboxes, sync_to_thread=False),
    }
    request_max_body_size = MAX_CSV_BYTES

    @get("/email-autoconfig")
    async def email_autoconfig(
        self, request: Request[Any, Any, State], user: NamedDependency[User], email: FromQuery[str]
    ) -> AutoconfigResult:
        """IMAP and SMTP host, port and security for ``email``, each with the source that said so."""
        state = request.app.state
        _limiter(state).check(user.id)
        discoverer: Discoverer = state.get(DISCOVER_STATE_KEY) or discover
        return await discoverer(email)

    @post("/mailboxes/connection-test", status_code=200, request_max_body_size=CONNECTION_TEST_MAX_BYTES)
    async def connection_test(
        self, request: Request[Any, Any, State], user: NamedDependency[User], data: JSONBody[ConnectionTestIn]
    ) -> ProbeReport:
        """Try IMAP (LOGIN, SELECT INBOX) and SMTP (TLS, AUTH) with these settings; store nothing."""
        servers = data.servers()
        state = request.app.state
        _probe_limiter(state).check(user.id)
        report = await _probe(state).run(servers)
        log.info(
            "connection_test", user_id=user.id, imap=report.imap.code or "ok", smtp=report.smtp.code or "ok"
        )
        return report

    @post("/mailboxes/batch", status_code=200, media_type="application/x-ndjson")
    async def batch(
        self,
        request: Request[Any, Any, State],
        user: NamedDependency[User],
        mailboxes: NamedDependency[Mailboxes],
        kind: FromQuery[Literal["hosted", "external"]],
        body: RawBody,
    ) -> Stream:
        """Create the CSV's mailboxes one by one, streaming one NDJSON line per row."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in CSV_TYPES:
            raise HTTPException(status_code=415, detail="send the CSV as text/csv")
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("the CSV must be UTF-8") from None
        rows = parse_batch_csv(text, kind)
        return Stream(
            _progress(mailboxes, user, rows),
            media_type="application/x-ndjson",
            # X-Accel-Buffering: a reverse proxy (nginx) would otherwise hold the progress back.
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


async def _progress(mailboxes: Mailboxes, user: User, rows: list[BatchRow]) -> AsyncIterator[bytes]:
    """One JSON line per row result (empty fields left out), then the summary line."""
    created = failed = 0
    async for result in import_rows(mailboxes, user, rows):
        if result.status == "created":
            created += 1
        else:
            failed += 1
        line = {k: v for k, v in asdict(result).items() if v is not None and v != ()}
        yield msgspec.json.encode(line) + b"\n"
    log.info("batch_import", user_id=user.id, rows=len(rows), created=created, failed=failed)
    yield msgspec.json.encode({"done": True, "of": len(rows), "created": created, "failed": failed}) + b"\n"
