"""Changing an external mailbox's connection (``PATCH /api/v1/mailboxes/{id}/connection``) against
a real Dovecot, through the whole app with its IMAP door: a password changed at the provider
pauses the mailbox, the new password sent through the API wakes it and mail flows again; a
watcher idling with the old settings is restarted with the new ones. The password is never
returned and never logged. Validation and isolation: tests/integration/test_mailbox_connection_api.py.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailhook.doors.imap.state import LOGIN_FAILED
from mailhook.services import Services
from tests.harness.dovecot import DovecotServer
from tests.support import mailbox_row, two_user_api

from .conftest import ADDRESS, PASSWORD, make_mail, spooled, until

NEW_PASSWORD = "changed-at-the-provider-canary-77"
SECOND = "desk@example.org"
SECOND_PASSWORD = "second-account-canary-58"


@dataclass
class Api:
    http: httpx.AsyncClient
    services: Services
    dovecot: DovecotServer
    owner: dict[str, str]
    other: dict[str, str]
    seen: list[str]

    async def create(self) -> int:
        body = {
            "kind": "external",
            "address": ADDRESS,
            "imap_host": "127.0.0.1",
            "imap_port": self.dovecot.port,
            "smtp_host": "127.0.0.1",
            "login": ADDRESS,
            "password": PASSWORD,
            "mode": "draft",
        }
        response = await self.http.post("/api/v1/mailboxes", json=body, headers=self.owner)
        assert response.status_code == 201, response.text
        self.seen.append(response.text)
        return int(response.json()["id"])

    async def mailbox(self, mailbox_id: int) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/mailboxes/{mailbox_id}", headers=self.owner)
        assert response.status_code == 200, response.text
        self.seen.append(response.text)
        return dict(response.json())

    async def change(self, mailbox_id: int, body: dict[str, Any]) -> dict[str, Any]:
        url = f"/api/v1/mailboxes/{mailbox_id}/connection"
        response = await self.http.patch(url, json=body, headers=self.owner)
        assert response.status_code == 200, response.text
        self.seen.append(response.text)
        return dict(response.json())

    async def until_status(self, mailbox_id: int, status: str) -> dict[str, Any]:
        """Waits on the database (polling the API would hit its rate limit), then asks the API."""

        async def reached() -> bool:
            return (await mailbox_row(self.services, mailbox_id)).status == status

        await until(reached, timeout=20, what=f"the mailbox {status}")
        return await self.mailbox(mailbox_id)


@pytest.fixture
async def api(services: Services, dovecot: DovecotServer) -> AsyncIterator[Api]:
    async with two_user_api(services) as (http, (_, owner), (_, other)):
        yield Api(http, services, dovecot, owner, other, [])


async def _mail_flows(api: Api, login: str, jobs: int) -> None:
    """A message delivered to ``login`` now becomes spool job number ``jobs``."""
    await asyncio.to_thread(api.dovecot.deliver, login, make_mail())

    async def spooled_enough() -> bool:
        return len(await spooled(api.services)) >= jobs

    await until(spooled_enough, timeout=20, what=f"{jobs} spool jobs")


def _assert_never_shown(api: Api, json_log: io.StringIO, *secrets: str) -> None:
    for secret in secrets:
        for text in api.seen:
            assert secret not in text, "a response showed the password"
        assert secret not in json_log.getvalue(), "the log holds the password"


async def test_a_password_changed_at_the_provider_is_fixed_through_the_api(
    api: Api, json_log: io.StringIO
) -> None:
    # The owner changed the password at the provider; mailhook still holds the old one.
    api.dovecot.set_password(ADDRESS, NEW_PASSWORD)
    mailbox_id = await api.create()
    paused = await api.until_status(mailbox_id, "inactive")
    assert paused["status_reason"].startswith(LOGIN_FAILED), paused

    changed = await api.change(mailbox_id, {"password": NEW_PASSWORD})
    assert changed["has_credentials"] is True
    assert "password" not in changed
    woken = await api.until_status(mailbox_id, "active")
    assert woken["status_reason"] == ""
    await _mail_flows(api, ADDRESS, 1)
    listed = await api.http.get("/api/v1/mailboxes", headers=api.owner)
    api.seen.append(listed.text)
    _assert_never_shown(api, json_log, NEW_PASSWORD, PASSWORD)


async def test_a_watcher_idling_with_the_old_settings_restarts_with_the_new_ones(
    api: Api, json_log: io.StringIO
) -> None:
    mailbox_id = await api.create()
    await _mail_flows(api, ADDRESS, 1)  # logged in and idling as the first account
    api.dovecot.set_password(SECOND, SECOND_PASSWORD)

    await api.change(mailbox_id, {"login": SECOND, "password": SECOND_PASSWORD})
    assert await asyncio.to_thread(api.dovecot.wait_log, f"Login: user=<{SECOND}>", 20.0)
    await _mail_flows(api, SECOND, 2)
    assert (await api.mailbox(mailbox_id))["status"] == "active"
    _assert_never_shown(api, json_log, SECOND_PASSWORD)


async def test_another_user_cannot_change_the_connection(api: Api) -> None:
    mailbox_id = await api.create()
    url = f"/api/v1/mailboxes/{mailbox_id}/connection"
    response = await api.http.patch(url, json={"imap_port": 1}, headers=api.other)
    assert response.status_code == 404, response.text
    assert (await api.mailbox(mailbox_id))["imap"] == {"host": "127.0.0.1", "port": api.dovecot.port}
