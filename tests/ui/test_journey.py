"""The main journey in a real browser: register, create a hosted agent, edit and test its
persona, watch a mail arrive live in the activity log, approve the held reply, see the credits.

Plus the edges a user meets: a wrong password, a keyboard-only sign-in, an API refusal shown
in the API's own words, the dashboard on a phone, and every page's screenshot
(tests/artifacts/ui/).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.lmtp_client import lmtp_send, make_message
from tests.ui.conftest import AGENT_DOMAIN, PASSWORD, BrowserPage, UiServer


def _credits(ui: BrowserPage) -> int:
    ui.goto("/app/")
    credits = ui.page.locator("#stat-credits")
    expect(credits).to_have_text(re.compile(r"^\d+$"))
    return int(credits.inner_text())


def test_register_create_agent_persona_live_activity_and_approval(
    browser_page: BrowserPage, ui_server: UiServer
) -> None:
    ui, page = browser_page, browser_page.page
    email = "journey@example.com"

    # Register: the front page sends a signed-out visitor to sign in; from there, sign up.
    ui.goto("/")
    expect(page).to_have_url(re.compile(r"/app/login\.html"))
    ui.shot("login")
    page.get_by_role("link", name="Create one").click()
    page.wait_for_load_state()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    ui.shot("register")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()
    expect(page.get_by_text("You have no agents yet.")).to_be_visible()
    expect(page.locator("#stat-credits")).to_have_text("10")
    ui.shot("dashboard-empty")

    # Create a hosted agent through the wizard (gated: every reply waits for approval).
    page.get_by_role("link", name="Create your first agent").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Address")).to_be_focused()
    page.get_by_label("Handle").fill("support")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("textbox", name="Persona", exact=True).fill("You are Sam from Acme.")
    expect(page.get_by_label("Mode", exact=True)).to_have_value("gated")
    ui.shot("new-agent")
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_load_state()
    expect(page.locator("#message")).to_contain_text(f"Created support@{AGENT_DOMAIN}")
    mailbox_id = int(re.search(r"id=(\d+)", page.url).group(1))  # type: ignore[union-attr]

    # Edit the persona: the live counter follows the text; saving records a history version.
    persona = page.get_by_role("textbox", name="Persona", exact=True)
    persona.fill("You are Sam, the friendly support agent of Acme Widgets. Answer briefly.")
    expect(page.locator("#persona-count")).to_contain_text(re.compile(r"About \d+ of 2,000 tokens"))
    page.get_by_label("Escalation triggers, one per line").fill("refund\nlawyer")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_have_text("Saved.")
    expect(page.locator("#history li")).to_have_count(2)
    ui.shot("mailbox-config")

    # Test my persona: five samples in an expandable grid; each run costs exactly one credit,
    # read from the dashboard before and after it.
    credits_before_tests = _credits(ui)
    assert credits_before_tests == 10, "creating and editing an agent costs nothing"
    ui.goto(f"/app/persona-test.html?id={mailbox_id}")
    page.get_by_role("button", name="Run test").click()
    samples = page.locator("#results details")
    expect(samples).to_have_count(5, timeout=20_000)
    expect(samples.nth(2)).to_contain_text("I want a refund")
    expect(samples.nth(2).locator(".badge-escalate").first).to_have_text("escalate")
    samples.nth(4).locator("summary").click()
    expect(samples.nth(4)).to_contain_text("Thanks for asking: it left today.")
    ui.shot("persona-test")
    credits_after_one_test = _credits(ui)
    assert credits_after_one_test == credits_before_tests - 1, "one persona test costs one credit"
    # A second run is kept beside the first for comparison (in this browser only).
    ui.goto(f"/app/persona-test.html?id={mailbox_id}")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator("#message")).to_have_text("Done: 5 sample replies below.")
    page.get_by_label("Compare with an earlier run").select_option(index=1)
    expect(samples.first.locator("h4")).to_have_count(2)
    ui.shot("persona-test-compare")
    credits_after_tests = _credits(ui)
    assert credits_after_tests == credits_after_one_test - 1, "the second test costs one credit too"

    # The activity log is live: a mail delivered over LMTP shows up without a reload.
    ui.goto(f"/app/activity.html?mailbox={mailbox_id}")
    queued = page.locator("#log tbody tr", has=page.locator(".badge-queued"))
    expect(page.locator("#page-info")).to_contain_text("Page 1 of 1")
    expect(queued).to_have_count(0)
    expect(page.locator("#live")).to_have_text(re.compile("^Live:"))
    message = make_message(to=f"support@{AGENT_DOMAIN}", subject="Where is my order?")
    result = lmtp_send(ui_server.lmtp_port, "alice@example.org", [f"support@{AGENT_DOMAIN}"], message)
    assert all(reply.startswith("250") for reply in result.data.values()), result
    expect(queued).to_have_count(1, timeout=20_000)
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 (3 entries)")
    expect(page.locator(".site-header .count")).to_have_text("1")
    ui.shot("activity")
    credits_while_held = _credits(ui)
    assert credits_while_held == credits_after_tests, "a reply waiting for approval costs nothing yet"

    # Approve the held reply after an edit, from the approval page.
    ui.goto(f"/app/activity.html?mailbox={mailbox_id}")
    page.get_by_role("link", name="Review in approvals").click()
    page.wait_for_load_state()
    held = page.locator("#pending article")
    expect(held).to_have_count(1)
    expect(held.get_by_role("heading", name=re.compile("Where is my order"))).to_be_visible()
    expect(held).to_contain_text("alice@example.org")
    ui.shot("pending")
    held.get_by_role("button", name="Edit").click()
    page.get_by_label("Edited reply").fill("Hello Alice, your order left today. Sam")
    held.get_by_role("button", name="Approve edited reply").click()
    expect(page.locator("#message")).to_have_text("Edited reply to alice@example.org sent.")
    expect(page.get_by_text("Nothing is waiting for approval.")).to_be_visible()

    # The log, filtered by action: the reply was approved by its owner and sent.
    ui.goto(f"/app/activity.html?mailbox={mailbox_id}")
    page.get_by_label("Action").select_option("replied")
    expect(page.locator("#log tbody tr")).to_have_count(1)
    expect(page.locator("#log tbody tr")).to_contain_text("approved by the owner")
    page.get_by_label("Action").select_option("error")
    expect(page.locator("#empty")).to_have_text('No "error" entries for this agent.')

    # The dashboard counts the reply as handled, and the approved reply cost exactly one credit.
    credits_now = _credits(ui)
    expect(page.locator("#stat-handled")).not_to_have_text("0")
    ui.shot("dashboard")
    assert credits_now == credits_while_held - 1, "an approved reply costs one credit"
