"""``POST /api/v1/mailboxes/connection-test`` (issue #8): the wizard's test of an external
mailbox's settings before saving, against the real Dovecot and a real STARTTLS+AUTH submission
server, through the whole app. Nothing is stored; the password never comes back or reaches the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mailhook.api.controllers.onboarding import PROBE_STATE_KEY
from mailhook.app import create_app
from mailhook.autoconfig.probe import ConnectionProbe
from mailhook.services import Services
from mailhook.store.models import Mailbox
from tests.fakes.relay import RelaySink
from tests.harness.dovecot import DovecotServer
from tests.harness.ports import free_port
from tests.support import two_user_api

from .conftest import ADDRESS, PASSWORD

PATH = "/api/v1/mailboxes/connection-test"
WRONG = "not-the-Password-canary-81"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here is about the database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


@dataclass
class Api:
    http: httpx.AsyncClient
    services: Services
    app: Any
    owner: dict[str, str]
    other: dict[str, str]
    dovecot: DovecotServer
    smtp: RelaySink

    def body(self, **fields: Any) -> dict[str, Any]:
        """Settings that work, with ``fields`` changed."""
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.dovecot.port,
            "smtp_host": "127.0.0.1",
            "smtp_port": self.smtp.port,
            "login": ADDRESS,
            "password": PASSWORD,
            **fields,
        }

    async def test(self, headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
        return await self.http.post(
            PATH, json=self.body(**fields), headers=self.owner if headers is None else headers
        )


@pytest.fixture
async def api(services: Services, dovecot: DovecotServer, account_smtp: RelaySink) -> AsyncIterator[Api]:
    app = create_app(services, migrate=False)
    async with two_user_api(services, app) as (http, (_, owner), (_, other)):
        yield Api(http, services, app, owner, other, dovecot, account_smtp)


async def _mailbox_count(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Mailbox)) or 0)


def _result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the tests a wizard user runs ---------------------------------------------------------------


async def test_working_settings_pass_both_protocols_and_store_nothing(api: Api) -> None:
    body = _result(await api.test())
    assert body == {"ok": True, "imap": {"ok": True, "code": "", "error": ""}, "smtp": body["smtp"]}
    assert body["smtp"] == {"ok": True, "code": "", "error": ""}
    assert api.smtp.logins == [ADDRESS], "SMTP AUTH really happened"
    assert api.dovecot.wait_log(f"Login: user=<{ADDRESS}>"), "IMAP LOGIN really happened"
    assert api.smtp.messages == [], "nothing is sent"
    assert await _mailbox_count(api.services) == 0, "nothing is stored"


async def test_a_wrong_password_is_refused_by_both_and_never_echoed_or_logged(
    api: Api, json_log: io.StringIO
) -> None:
    response = await api.test(password=WRONG)
    body = _result(response)
    assert body["ok"] is False
    for protocol in ("imap", "smtp"):
        assert body[protocol]["code"] == "auth_failed", body
        assert "refused the login" in body[protocol]["error"]
        assert "app password" in body[protocol]["error"]
    assert body["imap"]["error"].startswith(f"IMAP 127.0.0.1:{api.dovecot.port}: ")
    assert WRONG not in response.text
    assert WRONG not in json_log.getvalue()
    assert '"event": "connection_test"' in json_log.getvalue(), "the outcome is logged, without it"


PRIVATE_HOSTS = [
    # "localhost" reaches the test servers, but only "127.0.0.1" is allow-listed (conftest.py).
    ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
    ("10.1.2.3", "10.1.2.3 is a private address (RFC 1918)"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("::ffff:127.0.0.1", "a loopback address inside an IPv6 address"),
]


async def test_private_hosts_are_refused_before_any_connection(api: Api) -> None:
    for host, reason in PRIVATE_HOSTS:
        body = _result(await api.test(imap_host=host, smtp_host=host))
        for protocol in ("imap", "smtp"):
            assert body[protocol]["code"] == "host_refused", body
            assert reason in body[protocol]["error"], body
            assert "imap.allow_hosts" in body[protocol]["error"]
    assert api.smtp.logins == []
    assert f"user=<{ADDRESS}>" not in api.dovecot.log_file.read_text(), "no login reached Dovecot"


async def test_names_resolving_inside_or_nowhere(api: Api) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        if host != "mail.example.test":
            raise OSError("NXDOMAIN")
        return ["93.184.216.34", "192.168.1.10"]

    api.app.state[PROBE_STATE_KEY] = ConnectionProbe(api.services.settings.imap, resolver=resolver)
    body = _result(await api.test(imap_host="mail.example.test", smtp_host="gone.example.test"))
    assert body["imap"]["code"] == "host_refused"
    assert "mail.example.test resolves to 192.168.1.10, a private address" in body["imap"]["error"]
    assert body["smtp"]["code"] == "cannot_resolve"
    assert "gone.example.test: cannot resolve the host name" in body["smtp"]["error"]


async def test_tls_checks_the_name_typed_not_the_address_connected_to(api: Api) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # both names lead to the test servers

    imap = dataclasses.replace(api.services.settings.imap, allow_hosts="localhost, mail.example.test")
    api.app.state[PROBE_STATE_KEY] = ConnectionProbe(imap, resolver=resolver)
    # The test certificate is for "localhost" (and 127.0.0.1), not for "mail.example.test".
    assert _result(await api.test(imap_host="localhost", smtp_host="localhost"))["ok"] is True
    body = _result(await api.test(imap_host="mail.example.test", smtp_host="mail.example.test"))
    for protocol in ("imap", "smtp"):
        assert body[protocol]["code"] == "tls_failed", body
        assert "not valid for 'mail.example.test'" in body[protocol]["error"]


async def test_connection_problems_are_told_apart(api: Api) -> None:
    closed = free_port()
    body = _result(await api.test(imap_port=closed, smtp_port=closed))
    assert body["imap"]["code"] == body["smtp"]["code"] == "cannot_connect"
    assert "cannot connect" in body["imap"]["error"]
    # IMAP over TLS to the SMTP server, which speaks plain text first: not a TLS server. SMTP
    # to a server without STARTTLS: mailhook will not send the password in clear.
    plain = RelaySink(free_port()).start()
    try:
        tls = _result(await api.test(imap_port=api.smtp.port, smtp_port=plain.port))
    finally:
        plain.stop()
    assert tls["imap"]["code"] == "tls_failed" and "is the port right?" in tls["imap"]["error"]
    assert tls["smtp"]["code"] == "tls_failed" and "does not offer STARTTLS" in tls["smtp"]["error"]


async def test_a_silent_server_times_out(api: Api) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets; returns when the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    api.app.state[PROBE_STATE_KEY] = ConnectionProbe(api.services.settings.imap, timeout=0.5)
    try:
        body = _result(await api.test(imap_port=port, smtp_port=port))
    finally:
        server.close()
    assert body["imap"]["code"] == body["smtp"]["code"] == "timeout"
    assert body["imap"]["error"].endswith("no answer within 0.5 s")


# --- bad requests -------------------------------------------------------------------------------


async def test_needs_a_bearer_token(api: Api) -> None:
    assert (await api.test(headers={})).status_code == 401
    assert (await api.test(headers={"Authorization": "Bearer forged"})).status_code == 401
    assert api.smtp.logins == []


BAD_FIELDS = [
    ({"imap_host": "imap host"}, "imap_host must be a host name"),
    ({"smtp_host": "127.0.0.1\r\nRCPT TO:<x@y>"}, "smtp_host must be a host name"),
    ({"imap_host": "a" * 300}, "imap_host must be a host name"),
    ({"imap_port": 0}, "imap_port must be between 1 and 65535"),
    ({"smtp_port": 70000}, "smtp_port must be between 1 and 65535"),
    ({"login": "   "}, "login and password are required"),
    ({"password": ""}, "login and password are required"),
    ({"password": "pw\x00"}, "password must not contain NUL"),
    ({"login": "x" * 321}, "login must be at most 320"),
    ({"password": "p" * 5000}, "password must be at most 4,096"),
]
MALFORMED = [
    b"not json",
    b"[]",
    b'{"imap_host": "127.0.0.1"}',
    b'{"imap_host": 7, "smtp_host": "a", "login": "a", "password": "b"}',
    b'{"imap_host": "a", "imap_port": true, "smtp_host": "a", "login": "a", "password": "b"}',
    b'{"imap_host": "a", "smtp_host": "a", "login": "a", "password": "b", "persona": "x"}',
]


async def test_bad_fields_and_malformed_bodies_are_a_clear_400(api: Api) -> None:
    for change, detail in BAD_FIELDS:
        response = await api.test(**change)
        assert response.status_code == 400, (change, response.text)
        assert detail in response.json()["detail"], change
    for payload in MALFORMED:
        response = await api.http.post(
            PATH, content=payload, headers={**api.owner, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (payload, response.text)
    assert api.smtp.logins == []
    assert (await api.test()).status_code == 200, "refused requests do not count against the limit"


async def test_an_oversized_body_is_413(api: Api) -> None:
    response = await api.test(password="p" * 20_000)
    assert response.status_code == 413
    assert api.smtp.logins == []


async def test_rate_limited_per_user(api: Api) -> None:
    # Refused hosts cost no network but count: every test is a password guess somewhere.
    statuses = [(await api.test(imap_host="10.0.0.1", smtp_host="10.0.0.1")).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    limited = await api.test()
    assert limited.status_code == 429 and "connection tests in 10 minutes" in limited.json()["detail"]
    assert (await api.test(headers=api.other)).status_code == 200, "another user has a limit of their own"
    assert await _mailbox_count(api.services) == 0
