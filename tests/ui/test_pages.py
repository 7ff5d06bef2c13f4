"""What a user meets beside the main journey: a wrong password, signing in with the keyboard
alone, the API's refusals in its own words, a phone-width screen, the remaining pages, and
erasing the account."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.lmtp_client import LmtpClient, lmtp_send, make_message
from tests.ui.conftest import AGENT_DOMAIN, PASSWORD, BrowserPage, UiServer, register_via_api


def _sign_in_with_token(ui: BrowserPage, token: str, path: str = "/app/") -> None:
    """Skip the login form (tested on its own): the token goes where the UI keeps it."""
    ui.goto("/app/login.html")
    ui.page.evaluate("token => sessionStorage.setItem('mailhook.token', token)", token)
    ui.goto(path)


def _create_hosted(server: UiServer, token: str, handle: str, **config: object) -> int:
    response = httpx.post(
        f"{server.base_url}/api/v1/mailboxes",
        json={"kind": "hosted", "handle": handle, **config},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_wrong_password_is_shown_then_keyboard_only_sign_in(
    browser_page: BrowserPage, ui_server: UiServer
) -> None:
    register_via_api(ui_server.base_url, "keys@example.com")
    ui, page = browser_page, browser_page.page
    ui.goto("/app/")
    expect(page).to_have_url(re.compile(r"/app/login\.html\?next="))
    # The e-mail field has focus on arrival; Tab leads to the password, Enter submits.
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type("keys@example.com")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("not my password")
    page.keyboard.press("Enter")
    message = page.locator("#message")
    expect(message).to_have_text("wrong e-mail or password")
    expect(message).to_have_attribute("aria-live", "polite")
    ui.shot("login-error")
    # Focus went back to the (selected) password: typing replaces it.
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/app/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    # The first Tab on a page reaches the skip link, which is then visible.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["x"] >= 0  # type: ignore[index]


def test_api_refusals_are_shown_in_the_apis_words(browser_page: BrowserPage, ui_server: UiServer) -> None:
    token = register_via_api(ui_server.base_url, "refused@example.com")
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, token, "/app/new.html")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Handle").fill("postmaster")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#message")).to_contain_text("reserved")
    ui.shot("new-agent-refused")

    # A persona over the limit: the estimate warns while typing, the server's count is shown.
    mailbox_id = _create_hosted(ui_server, token, "limits")
    ui.goto(f"/app/mailbox.html?id={mailbox_id}")
    persona = page.get_by_role("textbox", name="Persona", exact=True)
    persona.fill("word " * 2500)
    expect(page.locator("#persona-count")).to_contain_text("too long")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_have_text("persona is 2,501 tokens; the limit is 2,000 (cl100k_base)")
    expect(persona).to_have_attribute("aria-invalid", "true")
    # Documents are checked before anything is sent.
    page.get_by_label("Documents: a JSON list or the URL of a manifest").fill(
        '[{"name": "x", "url": "ftp://a"}]'
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_contain_text("must start with https://")
    ui.shot("mailbox-refused")


def test_dashboard_fits_a_phone(browser_page: BrowserPage, ui_server: UiServer) -> None:
    token = register_via_api(ui_server.base_url, "phone@example.com")
    _create_hosted(ui_server, token, "phone-support", display_name="Phone Support", mode="gated")
    ui, page = browser_page, browser_page.page
    page.set_viewport_size({"width": 375, "height": 740})
    _sign_in_with_token(ui, token)
    expect(page.locator(".address")).to_have_text(f"Phone Support · phone-support@{AGENT_DOMAIN}")
    expect(page.locator(".badge-active")).to_have_text("active")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ui.shot("dashboard-phone")
    ui.goto("/app/activity.html")
    expect(page.get_by_text("Nothing has happened yet.", exact=False)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ui.shot("activity-phone")


def test_other_pages_and_erasing_the_account(browser_page: BrowserPage, ui_server: UiServer) -> None:
    token = register_via_api(ui_server.base_url, "pages@example.com")
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, token, "/app/pending.html")
    expect(page.get_by_text("Nothing is waiting for approval.")).to_be_visible()
    ui.shot("pending-empty")
    ui.goto("/app/activity.html")
    expect(page.get_by_text("You have no agents yet, so there is no activity.")).to_be_visible()
    ui.goto("/billing?checkout=canceled")
    expect(page).to_have_url(re.compile(r"/app/billing\.html\?checkout=canceled$"))
    expect(page.locator("#message")).to_have_text("Checkout was canceled; nothing was charged.")
    expect(page.locator("#credits")).to_have_text("10")
    expect(page.get_by_text("Buying credits is not set up on this server.")).to_be_visible()
    ui.shot("billing")
    ui.goto("/app/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()

    # Danger zone: the button stays disabled until the phrase is typed; a wrong password is
    # the API's 401, shown on the page rather than signing the user out.
    ui.goto("/app/settings.html")
    expect(page.locator("#email")).to_have_text("pages@example.com")
    erase = page.get_by_role("button", name="Delete my account")
    expect(erase).to_be_disabled()
    page.get_by_label("Type “delete my account” to confirm").fill("delete my account")
    page.get_by_label("Your password").fill("not the password")
    expect(erase).to_be_enabled()
    ui.shot("settings")
    erase.click()
    expect(page.locator("#message")).to_have_text("password does not match")
    page.get_by_label("Your password").fill(PASSWORD)
    erase.click()
    expect(page).to_have_url(re.compile(r"/app/login\.html\?reason=erased"))
    expect(page.locator("#message")).to_have_text("Your account has been deleted.")
    gone = httpx.get(f"{ui_server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


def test_external_autoconfig_and_batch_import(browser_page: BrowserPage, ui_server: UiServer) -> None:
    token = register_via_api(ui_server.base_url, "batch@example.com")
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, token, "/app/new.html")

    # External mailbox: the server settings of a known provider are filled in (built-in
    # presets: no network), with the provider's notes for the user.
    page.get_by_label("An existing mailbox elsewhere").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("E-mail address").fill("someone@gmail.com")
    page.get_by_role("button", name="Find server settings").click()
    expect(page.get_by_label("IMAP server")).to_have_value("imap.gmail.com")
    expect(page.get_by_label("SMTP server")).to_have_value("smtp.gmail.com")
    expect(page.get_by_label("Login")).to_have_value("someone@gmail.com")
    expect(page.get_by_label("Password or app password")).to_be_focused()
    expect(page.locator("#autoconfig-notes")).to_contain_text("source: preset")
    ui.shot("new-agent-external")

    # Batch: one progress bar, one line per row, each failure with the API's reason.
    csv = "agent_name,password\nsales,\npostmaster,\nbilling-help,ignored\n"
    page.get_by_text("Advanced: create many agents from a CSV file").click()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "agents.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#batch-message")).to_have_text("Done: 2 created, 1 failed, of 3.")
    progress = page.locator("#batch-progress")
    assert progress.evaluate("p => p.value === p.max && p.max === 3")
    rows = page.locator("#batch-results tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(f"sales@{AGENT_DOMAIN}")
    expect(rows.nth(1)).to_contain_text("failed")
    expect(rows.nth(1)).to_contain_text("reserved")
    expect(rows.nth(2)).to_contain_text("password column is ignored")
    ui.shot("batch-import")
    ui.goto("/app/")
    expect(page.locator(".mailboxes > li")).to_have_count(2)


def test_mail_content_is_shown_as_text_never_as_markup(
    browser_page: BrowserPage, ui_server: UiServer
) -> None:
    token = register_via_api(ui_server.base_url, "hostile@example.com")
    _create_hosted(ui_server, token, "hostile", mode="gated")
    hostile = '<img src=x onerror="document.title=1">Hi <script>document.title=2</script>'
    message = make_message(to=f"hostile@{AGENT_DOMAIN}", subject=hostile, sender="mallory@example.org")
    lmtp_send(ui_server.lmtp_port, "mallory@example.org", [f"hostile@{AGENT_DOMAIN}"], message)
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, token, "/app/pending.html")
    held = page.locator("#pending article")
    expect(held).to_have_count(1, timeout=20_000)
    expect(held.get_by_role("heading", level=2)).to_have_text(f"Re: {hostile}")
    assert held.locator("img, script").count() == 0
    assert page.title() == "Approvals · mailhook"


def test_activity_pages(browser_page: BrowserPage, ui_server: UiServer) -> None:
    token = register_via_api(ui_server.base_url, "pages-of-log@example.com")
    mailbox_id = _create_hosted(ui_server, token, "paused")
    auth = {"Authorization": f"Bearer {token}"}
    paused = httpx.post(
        f"{ui_server.base_url}/api/v1/mailboxes/{mailbox_id}/status",
        json={"status": "inactive"},
        headers=auth,
    )
    assert paused.status_code == 200, paused.text
    # A paused agent logs each mail as skipped without asking the model: 21 rows, two pages.
    address = f"paused@{AGENT_DOMAIN}"
    with LmtpClient("127.0.0.1", ui_server.lmtp_port) as client:
        for number in range(21):
            message = make_message(to=address, subject=f"Mail {number}")
            assert client.send("alice@example.org", [address], message).data[address].startswith("250")
    log_url = f"{ui_server.base_url}/api/v1/mailboxes/{mailbox_id}/activity"
    deadline = time.monotonic() + 30
    while httpx.get(log_url, headers=auth).json()["total"] < 21:
        assert time.monotonic() < deadline, "the mail was not all logged"
        time.sleep(0.2)
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, token, f"/app/activity.html?mailbox={mailbox_id}")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2 (21 entries)")
    expect(page.locator("#log tbody tr")).to_have_count(20)
    expect(page.get_by_role("button", name="Newer")).to_be_disabled()
    page.get_by_role("button", name="Older").click()
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2 (21 entries)")
    expect(page.locator("#log tbody tr")).to_have_count(1)
    expect(page.locator("#log tbody tr .badge")).to_have_text("skipped")
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2 (21 entries)")


def test_token_estimate_is_close_to_the_servers_count(browser_page: BrowserPage) -> None:
    from mailhook.agent.tokens import count_tokens

    texts = [
        "You are Sam, the friendly support agent of Acme Widgets. Answer questions about orders, "
        "shipping and returns; never promise refunds, hand those to a person. " * 30,
        "Vous êtes Alex, l'agent d'assistance. Répondez poliment aux questions sur les commandes. " * 20,
        "Sie sind Max, der freundliche Kundendienst. Beantworten Sie Fragen zu Bestellungen, "
        "Lieferungen und Rücksendungen höflich. " * 10,
        "こんにちは、私はサポート担当のアレックスです。ご注文についてお答えします。" * 10,
        (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()[:8000],
    ]
    ui, page = browser_page, browser_page.page
    ui.goto("/app/login.html")
    for text in texts:
        estimate = page.evaluate("async t => (await import('/app/js/tokens.js')).estimateTokens(t)", text)
        exact = count_tokens(text)
        assert abs(estimate - exact) <= 0.1 * exact, (estimate, exact)


def test_an_expired_session_goes_back_to_sign_in(browser_page: BrowserPage) -> None:
    ui, page = browser_page, browser_page.page
    _sign_in_with_token(ui, "not-a-valid-token", "/app/billing.html")
    expect(page).to_have_url(re.compile(r"/app/login\.html\?next=%2Fapp%2Fbilling\.html&reason=expired$"))
    expect(page.locator("#message")).to_have_text("Your session has ended. Please sign in again.")
    assert page.evaluate("sessionStorage.getItem('mailhook.token')") is None


def test_a_reply_kept_in_the_sandbox_outbox_can_be_read_from_the_log(
    browser_page: BrowserPage, ui_server: UiServer
) -> None:
    token = register_via_api(ui_server.base_url, "reader@example.com")
    mailbox_id = _create_hosted(ui_server, token, "reader", mode="autonomous")
    address = f"reader@{AGENT_DOMAIN}"
    ui, page = browser_page, browser_page.page
    # The page is open first, so the rows arrive over the live stream: it links the reply too.
    _sign_in_with_token(ui, token, f"/app/activity.html?mailbox={mailbox_id}")
    expect(page.locator("#live")).to_have_text("Live: new activity appears as it happens.")
    question = make_message(to=address, subject="Where is my parcel?", sender="alice@example.org")
    lmtp_send(ui_server.lmtp_port, "alice@example.org", [address], question)
    lmtp_send(ui_server.lmtp_port, "dan@example.com", [address], make_message(to=address, body="Thank you"))
    replied = page.locator("#log tbody tr", has=page.locator(".badge", has_text="replied"))
    expect(replied).to_have_count(1, timeout=20_000)
    quiet = page.locator("#log tbody tr", has=page.locator(".badge", has_text="no action"))
    expect(quiet).to_have_count(1, timeout=20_000)
    expect(quiet.get_by_role("button", name="View reply")).to_have_count(0)
    view = replied.get_by_role("button", name="View reply")
    expect(view).to_have_attribute("aria-expanded", "false")
    view.focus()
    page.keyboard.press("Enter")
    expect(view).to_have_attribute("aria-expanded", "true")
    shown = page.locator(".reply-row")
    text = shown.locator("pre").first
    expect(text).to_be_focused()
    expect(text).to_contain_text("Thanks for asking: it left today.")
    # A refresh that brings the same rows (as when the live stream reconnects) leaves the open
    # reply and the focus where they are: a redraw would close it under the reader.
    with page.expect_response(re.compile(r"/activity\?")) as refreshed:
        page.dispatch_event("#action", "change")
    refreshed.value.finished()
    page.evaluate("() => new Promise(done => setTimeout(done, 100))")
    expect(page.locator(".reply-row")).to_have_count(1)
    expect(text).to_be_focused()
    expect(shown.locator(".reply-head")).to_contain_text("Re: Where is my parcel?")
    expect(shown.locator(".reply-head")).to_contain_text("alice@example.org")
    shown.get_by_text("Whole message (RFC 5322 source)").click()
    expect(shown.locator("details pre")).to_contain_text("Auto-Submitted: auto-replied")
    ui.shot("activity-view-reply")
    view.click()
    expect(page.locator(".reply-row")).to_have_count(0)
    page.reload()  # and the same from the log's own page
    expect(replied.get_by_role("button", name="View reply")).to_have_count(1)
