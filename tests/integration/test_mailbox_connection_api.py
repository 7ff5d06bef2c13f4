"""``PATCH /api/v1/mailboxes/{id}/connection``: changing an external mailbox's servers, login
and password over real HTTP. Validation, tenant isolation, hosted and deleted mailboxes, and the
password's write-only promise (never returned, never logged). The IMAP door's reaction to a
change is tests/integration/imap/test_connection_update.py."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailhook.services import Services
from mailhook.store.models import ImapState
from tests.support import TwoUserApi, mailbox_row, two_user_api

OLD_SECRET = "old-app-password-Qw3"
NEW_SECRET = "new-app-password-canary-Zx9"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def extra_env() -> dict[str, str]:
    """No IMAP door: these mailboxes point at servers that do not exist."""
    return {"MAILHOOK_IMAP_ENABLED": "false", "MAILHOOK_LMTP_ENABLED": "false"}


@dataclass
class Api(TwoUserApi):
    async def external(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.create(
            {
                "kind": "external",
                "address": "help@example.org",
                "imap_host": "imap.example.org",
                "smtp_host": "smtp.example.org",
                "login": "help@example.org",
                "password": OLD_SECRET,
            },
            headers,
        )

    async def patch(
        self, mailbox_id: int, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.patch(
            f"/api/v1/mailboxes/{mailbox_id}/connection",
            json=body,
            headers=self.owner if headers is None else headers,
        )


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    async with two_user_api(services) as (http, (_, owner), (_, other)):
        yield Api(http, services, owner, other)


def _detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


async def test_only_the_fields_sent_change_and_the_password_is_sealed_not_shown(
    api: Api, json_log: io.StringIO
) -> None:
    created = await api.external()
    before = await mailbox_row(api.services, created["id"])
    response = await api.patch(created["id"], {"imap_host": "Mail.Example.NET.", "imap_port": 1993})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imap"] == {"host": "mail.example.net", "port": 1993}
    assert body["smtp"] == created["smtp"], "smtp was not sent, so it did not change"
    row = await mailbox_row(api.services, created["id"])
    assert (row.login, row.password_sealed) == (before.login, before.password_sealed)

    response = await api.patch(
        created["id"], {"password": NEW_SECRET, "login": " owner-login ", "smtp_port": 587}
    )
    assert response.status_code == 200, response.text
    assert response.json()["has_credentials"] is True and response.json()["smtp"]["port"] == 587
    row = await mailbox_row(api.services, created["id"])
    assert row.login == "owner-login"
    assert row.password_sealed is not None
    assert api.services.sealer.open(row.password_sealed).decode() == NEW_SECRET
    shown = await api.http.get(f"/api/v1/mailboxes/{created['id']}", headers=api.owner)
    listed = await api.http.get("/api/v1/mailboxes", headers=api.owner)
    assert '"fields": ["login", "password", "smtp_port"]' in json_log.getvalue(), "what changed is logged"
    for text in (response.text, shown.text, listed.text, json_log.getvalue()):
        assert NEW_SECRET not in text
        assert "owner-login" not in text, "the login is not shown either (docs/api.md)"
        assert "gAAAAA" not in text, "no sealed value"


async def test_a_change_clears_the_doors_failure_count(api: Api) -> None:
    created = await api.external()
    async with api.services.sessions() as session, session.begin():
        session.add(
            ImapState(mailbox_id=created["id"], last_uid=0, failures=7, last_error="login refused: no")
        )
    assert (await api.patch(created["id"], {"password": NEW_SECRET})).status_code == 200
    async with api.services.sessions() as session:
        state = await session.get(ImapState, created["id"])
    assert state is not None and (state.failures, state.last_error) == (0, "")


BAD_FIELDS = [
    ({"imap_host": "imap host"}, "imap_host must be a host name"),
    ({"smtp_host": "smtp.example.org\r\nRCPT TO:<x@y>"}, "smtp_host must be a host name"),
    ({"imap_host": ""}, "imap_host must be a host name"),
    ({"smtp_host": "a" * 300}, "smtp_host must be a host name"),
    ({"imap_port": 0}, "imap_port must be between 1 and 65535"),
    ({"smtp_port": 65536}, "smtp_port must be between 1 and 65535"),
    ({"imap_port": -993}, "imap_port must be between 1 and 65535"),
    ({"login": "   "}, "login must not be empty"),
    ({"login": "x" * 321}, "login must be at most 320"),
    ({"password": ""}, "password must not be empty"),
    ({"password": "pw\x00"}, "password must not contain NUL"),
    ({"password": "p" * 5000}, "password must be at most 4,096"),
    ({}, "send at least one of"),
]
MALFORMED = [
    b"not json",
    b"",
    b"\xff\xfe",
    b"[]",
    b'"password"',
    b'{"imap_port": "imaps"}',
    b'{"imap_port": true}',
    b'{"password": null}',
    b'{"imap_host": 7}',
    b'{"username": "typo"}',
    b'{"kind": "external"}',
    b'{"persona": "config goes to PATCH /mailboxes/{id}"}',
]


@SQLITE_ONLY
async def test_bad_fields_and_malformed_bodies_are_a_clear_400_and_change_nothing(api: Api) -> None:
    created = await api.external()
    before = await mailbox_row(api.services, created["id"])
    for change, detail in BAD_FIELDS:
        assert detail in _detail(await api.patch(created["id"], change), 400), change
    url = f"/api/v1/mailboxes/{created['id']}/connection"
    # The project's error handler names no field for a body of the wrong shape: a plain 400.
    for payload in MALFORMED:
        response = await api.http.patch(
            url, content=payload, headers={**api.owner, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (payload, response.text)
    huge = {"password": "p" * (20 * 1024)}
    response = await api.http.patch(url, json=huge, headers=api.owner)
    assert response.status_code == 413, response.text
    after = await mailbox_row(api.services, created["id"])
    assert (after.imap_host, after.login, after.password_sealed) == (
        before.imap_host,
        before.login,
        before.password_sealed,
    )


@SQLITE_ONLY
async def test_hosted_deleted_unknown_and_other_users_mailboxes_are_refused(api: Api) -> None:
    hosted = await api.create({"kind": "hosted", "handle": "desk"})
    detail = _detail(await api.patch(hosted["id"], {"password": NEW_SECRET}), 409)
    assert "hosted mailboxes have no connection settings" in detail

    mine = await api.external()
    for target in (mine["id"], hosted["id"], 999_999):
        response = await api.patch(target, {"imap_host": "evil.example.net"}, headers=api.other)
        assert _detail(response, 404) == "no such mailbox", target
    assert (await api.http.get(f"/api/v1/mailboxes/{mine['id']}", headers=api.owner)).json() == mine

    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await api.patch(mine["id"], {"imap_host": "evil.example.net"}, headers=headers)
        assert response.status_code == 401

    assert (await api.http.delete(f"/api/v1/mailboxes/{mine['id']}", headers=api.owner)).status_code == 204
    assert _detail(await api.patch(mine["id"], {"password": NEW_SECRET}), 409) == "mailbox is deleted"
    assert (await mailbox_row(api.services, mine["id"])).password_sealed is None, "erased stays erased"
