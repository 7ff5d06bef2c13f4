"""The Create Agent wizard tests an external mailbox's login before saving it (issue #8): a
failure shows each server's reason and saves nothing, a fix saves, and "Save anyway" keeps
settings the test could not confirm. Against a real Dovecot and a real STARTTLS+AUTH submission
server on loopback, which this module's own ``mailhook serve`` trusts and allows."""

from __future__ import annotations

import re
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
MAIL_PASSWORD = "app-password-1"


@pytest.fixture(scope="module")
def mail_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServers]:
    with provider_servers(tmp_path_factory.mktemp("dovecot"), ADDRESS, MAIL_PASSWORD) as servers:
        yield servers


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, mail_servers: MailServers) -> Iterator[UiServer]:
    """This module's app: it trusts the provider's test certificate and may reach it."""
    with ui_server_for(tmp_path_factory.mktemp("ui-wizard"), mail_servers) as server:
        yield server


def _open_wizard(ui: BrowserPage, email: str) -> str:
    token = register_via_api(ui.base_url, email)
    ui.goto("/app/login.html")
    ui.page.evaluate("token => sessionStorage.setItem('mailhook.token', token)", token)
    ui.goto("/app/new.html")
    return token


def _fill_external(page: Any, servers: MailServers, *, address: str, host: str, password: str) -> None:
    page.get_by_label("An existing mailbox elsewhere").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("E-mail address").fill(address)
    page.get_by_label("IMAP server").fill(host)
    page.get_by_label("IMAP port").fill(str(servers.imap.port))
    page.get_by_label("SMTP server").fill(host)
    page.get_by_label("SMTP port").fill(str(servers.smtp.port))
    page.get_by_label("Login").fill(ADDRESS)
    page.get_by_label("Password or app password").fill(password)
    page.get_by_role("button", name="Next").click()


def _mailboxes(ui: BrowserPage, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{ui.base_url}/api/v1/mailboxes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    mailboxes: list[dict[str, Any]] = response.json()
    return mailboxes


def test_a_failed_login_is_shown_and_nothing_saved_until_it_works(
    browser_page: BrowserPage, mail_servers: MailServers
) -> None:
    ui, page = browser_page, browser_page.page
    page.set_viewport_size({"width": 375, "height": 740})  # a phone
    token = _open_wizard(ui, "wizard-fail@example.com")
    _fill_external(page, mail_servers, address=ADDRESS, host="127.0.0.1", password="wrong password")
    page.get_by_role("button", name="Create agent").click()

    imap, smtp = (
        page.locator("#connection-result li[data-protocol=imap]"),
        page.locator("[data-protocol=smtp]"),
    )
    expect(imap).to_contain_text("Incoming mail: IMAP 127.0.0.1:")
    expect(imap).to_contain_text("the server refused the login")
    expect(smtp).to_contain_text("refused the login (535 5.7.8")
    expect(page.locator("#connection-result")).not_to_contain_text("wrong password")
    expect(page.get_by_role("heading", name="Connection test")).to_be_focused()
    expect(page.get_by_role("button", name="Save anyway")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/app/new\.html$"))
    assert _mailboxes(ui, token) == [], "a failed test saves nothing"
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the reasons wrap on a phone"
    ui.shot("new-agent-connection-failed")

    # Back to the settings: the stale result goes away as soon as a field changes.
    page.get_by_role("button", name="Back").click()
    page.get_by_label("Password or app password").fill(MAIL_PASSWORD)
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#connection")).to_be_hidden()
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url(re.compile(r"/app/mailbox\.html\?id=\d+&created=1"))
    expect(page.locator("#message")).to_contain_text(f"Created {ADDRESS}")
    [saved] = _mailboxes(ui, token)
    assert saved["address"] == ADDRESS and saved["kind"] == "external" and saved["has_credentials"]
    assert mail_servers.smtp.logins[-1] == ADDRESS, "the submission server saw the login"


def test_save_anyway_keeps_settings_the_test_could_not_confirm(
    browser_page: BrowserPage, mail_servers: MailServers
) -> None:
    ui, page = browser_page, browser_page.page
    token = _open_wizard(ui, "wizard-anyway@example.com")
    _fill_external(page, mail_servers, address="far@example.org", host="10.20.30.40", password=MAIL_PASSWORD)
    page.get_by_role("button", name="Create agent").click()
    refused = "10.20.30.40 is a private address (RFC 1918)"
    expect(page.locator("[data-protocol=imap]")).to_contain_text(refused)
    expect(page.locator("[data-protocol=smtp]")).to_contain_text(refused)
    assert _mailboxes(ui, token) == []
    # Keyboard only: focus is on the outcome; the next stop is "Save anyway".
    expect(page.get_by_role("heading", name="Connection test")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save anyway")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/app/mailbox\.html\?id=\d+&created=1"))
    [saved] = _mailboxes(ui, token)
    assert saved["address"] == "far@example.org"
