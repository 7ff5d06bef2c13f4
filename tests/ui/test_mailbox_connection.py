"""The agent page's Connection form: an external mailbox whose password changed at the provider
is paused by the IMAP door; its owner types the new password, the form tests both logins
(showing each server's reason on failure), saves, and the page shows the agent active again.
Against a real Dovecot and a real STARTTLS+AUTH submission server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import (
    BrowserPage,
    MailServers,
    UiServer,
    provider_servers,
    register_via_api,
    ui_server_for,
)

ADDRESS = "help@example.org"
NEW_PASSWORD = "new-app-password-canary-31"
OLD_PASSWORD = "the-old-app-password"


@pytest.fixture(scope="module")
def mail_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServers]:
    """The provider, where the password already is the new one."""
    with provider_servers(tmp_path_factory.mktemp("dovecot"), ADDRESS, NEW_PASSWORD) as servers:
        yield servers


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, mail_servers: MailServers) -> Iterator[UiServer]:
    """This module's app: it may reach the provider, and its IMAP door ticks in seconds."""
    with ui_server_for(
        tmp_path_factory.mktemp("ui-connection"),
        mail_servers,
        MAILHOOK_IMAP_LEASE_SECONDS="1.5",
        MAILHOOK_IMAP_BACKOFF_SECONDS="0.2",
        MAILHOOK_IMAP_BACKOFF_MAX_SECONDS="1",
        MAILHOOK_IMAP_TIMEOUT_SECONDS="5",
    ) as server:
        yield server


def _api(ui: BrowserPage, token: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = httpx.request(
        method, f"{ui.base_url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def _paused_by_the_door(ui: BrowserPage, token: str, servers: MailServers) -> int:
    """An external mailbox still holding the old password, once the door paused it."""
    created = _api(
        ui,
        token,
        "POST",
        "/mailboxes",
        {
            "kind": "external",
            "address": ADDRESS,
            "imap_host": "127.0.0.1",
            "imap_port": servers.imap.port,
            "smtp_host": "127.0.0.1",
            "smtp_port": servers.smtp.port,
            "login": ADDRESS,
            "password": OLD_PASSWORD,
        },
    )
    deadline = time.monotonic() + 30
    while _api(ui, token, "GET", f"/mailboxes/{created['id']}")["status"] != "inactive":
        assert time.monotonic() < deadline, "the door did not pause the mailbox"
        time.sleep(0.2)
    return int(created["id"])


def test_a_new_password_typed_on_the_agent_page_wakes_the_mailbox(
    browser_page: BrowserPage, mail_servers: MailServers
) -> None:
    ui, page = browser_page, browser_page.page
    page.set_viewport_size({"width": 375, "height": 740})  # a phone
    token = register_via_api(ui.base_url, "connection-owner@example.com")
    mailbox_id = _paused_by_the_door(ui, token, mail_servers)
    ui.goto("/app/login.html")
    page.evaluate("token => sessionStorage.setItem('mailhook.token', token)", token)
    ui.goto(f"/app/mailbox.html?id={mailbox_id}")
    expect(page.locator("#summary")).to_contain_text("IMAP login failed")
    section = page.get_by_role("region", name="Connection", exact=True)
    expect(section).to_be_visible()
    expect(page.get_by_label("IMAP server")).to_have_value("127.0.0.1")
    expect(page.get_by_label("SMTP port")).to_have_value(str(mail_servers.smtp.port))
    expect(page.get_by_label("Login")).to_have_value("")  # never shown

    # A typo first: both servers' reasons, nothing saved, focus on the outcome.
    page.get_by_label("Login").fill(ADDRESS)
    page.get_by_label("New password or app password").fill("still wrong")
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator("[data-protocol=imap]")).to_contain_text("the server refused the login")
    expect(page.locator("[data-protocol=smtp]")).to_contain_text("refused the login")
    expect(page.get_by_role("heading", name="Connection test")).to_be_focused()
    expect(page.get_by_role("button", name="Save anyway")).to_be_visible()
    assert _api(ui, token, "GET", f"/mailboxes/{mailbox_id}")["status"] == "inactive"
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the form and the reasons fit a phone"

    # The right password, from the keyboard: the test passes, the page saves and waits.
    page.get_by_label("New password or app password").fill(NEW_PASSWORD)
    expect(page.locator("#connection")).to_be_hidden()  # the stale result is gone
    page.get_by_label("New password or app password").press("Enter")
    expect(page.locator("[data-protocol=imap]")).to_have_count(0)
    expect(page.locator("#message")).to_contain_text("Connected: the agent is active again.", timeout=60_000)
    expect(page.locator("#summary")).not_to_contain_text("IMAP login failed")
    expect(page.get_by_label("New password or app password")).to_have_value("")
    assert NEW_PASSWORD not in page.content()
    assert _api(ui, token, "GET", f"/mailboxes/{mailbox_id}")["status"] == "active"
    ui.shot("mailbox-connection-fixed")
