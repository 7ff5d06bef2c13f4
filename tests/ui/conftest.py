"""Fixtures for the web UI tests: one ``mailhook serve`` for all of them (SQLite, fake model,
quotas on so credits move; each test signs up its own user), one headless chromium per module
(a fresh temporary profile) and a new browser context per test.

Debian's chromium is used as installed (``/usr/bin/chromium``); Playwright never downloads a
browser here. Screenshots go to ``tests/artifacts/ui/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.llm import FakeLLM, completion, decision
from tests.process import MailhookProcess, base_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
AGENT_DOMAIN = "agents.test"
PASSWORD = "correct horse battery staple"

# Console noise that is the page working as designed: the browser logs every 4xx/5xx answer
# (a wrong password is a 401 the page shows to the user).
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of (4\d\d|5\d\d)")


SAMPLES = [
    {"from": "Ann Buyer <ann@example.com>", "subject": "Opening hours", "text": "When are you open?"},
    {"from": "bob@example.org", "subject": "Price of the Pro plan", "text": "How much is Pro?"},
    {"from": "Cleo <cleo@example.net>", "subject": "I want a refund", "text": "Refund my order 42 now."},
    {"from": "Dan <dan@example.com>", "subject": "Thanks!", "text": "Thank you, all sorted."},
    {"from": "Eve <eve@example.org>", "subject": "Shipping to Norway", "text": "Do you ship to Oslo?"},
]


def scripted_model(payload: dict[str, Any]) -> tuple[int, Any]:
    """The fake model: sample e-mails when asked to write them (persona test), else a decision
    (an escalation for refunds, nothing for thanks, a reply otherwise)."""
    system, user = payload["messages"][0]["content"], payload["messages"][-1]["content"]
    if system.startswith("You write test e-mails"):
        return 200, completion(json.dumps({"emails": SAMPLES}))
    if "refund" in user.lower():
        return 200, completion(
            decision("escalate", reply="We will look at it.", reason="refund", trigger="refund")
        )
    if "Thank you" in user:
        return 200, completion("NO_ACTION")
    return 200, completion(decision(reply="Thanks for asking: it left today.", reason="a question"))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """UI tests stay on SQLite (the API's database behaviour is tested elsewhere on both)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"


@dataclass
class UiServer:
    """The running app and what a test needs to reach it."""

    base_url: str
    lmtp_port: int
    llm: FakeLLM


@contextmanager
def running_ui_server(root: Path, **extra_env: str) -> Iterator[UiServer]:
    """``mailhook serve`` as an operator runs it, from this checkout (so ``webui/`` is found),
    with ``extra_env`` on top of the UI tests' settings."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/system-deps.sh)")
    llm = FakeLLM(script=scripted_model).start()
    try:
        env = base_env(
            root / "data",
            MAILHOOK_DATABASE_URL=f"sqlite+aiosqlite:///{root / 'mailhook.db'}",
            MAILHOOK_LLM_PROVIDER="openai",
            MAILHOOK_LLM_BASE_URL=llm.base_url,
            MAILHOOK_LLM_MAX_RETRIES="0",
            MAILHOOK_AGENT_DOMAIN=AGENT_DOMAIN,
            MAILHOOK_BILLING_ENFORCE_QUOTA="true",
            MAILHOOK_SPOOL_POLL_SECONDS="0.2",
            MAILHOOK_SPOOL_BACKOFF_SECONDS="0.2",
            MAILHOOK_HTTP_RATE_LIMIT_IP_PER_MINUTE="100000",
            MAILHOOK_HTTP_RATE_LIMIT_USER_PER_MINUTE="100000",
            MAILHOOK_LOG_LEVEL="WARNING",
            **extra_env,
        )
        process = MailhookProcess(env, root / "mailhook.log").start(timeout=90)
        try:
            yield UiServer(
                base_url=f"http://127.0.0.1:{env['MAILHOOK_HTTP_PORT']}",
                lmtp_port=int(env["MAILHOOK_LMTP_PORT"]),
                llm=llm,
            )
        finally:
            process.stop()
    finally:
        llm.stop()


@dataclass
class MailServers:
    """An external mailbox's provider: Dovecot for IMAP, a submission server for SMTP."""

    imap: Any  # tests.harness.dovecot.DovecotServer
    smtp: Any  # tests.fakes.relay.RelaySink


@contextmanager
def provider_servers(root: Path, address: str, password: str) -> Iterator[MailServers]:
    """A private Dovecot and a STARTTLS+AUTH submission server, both knowing one account."""
    from tests.fakes.relay import RelaySink
    from tests.harness.dovecot import DovecotServer

    reason = DovecotServer.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with DovecotServer(root, {address: password}) as imap:
        smtp = RelaySink.submission(imap.cert, imap.key, (address, password))
        try:
            yield MailServers(imap, smtp)
        finally:
            smtp.stop()


@contextmanager
def ui_server_for(root: Path, servers: MailServers, **extra_env: str) -> Iterator[UiServer]:
    """An app that trusts the provider's test certificate and may reach it on 127.0.0.1."""
    with running_ui_server(
        root,
        MAILHOOK_IMAP_CA_FILE=str(servers.imap.cert),
        MAILHOOK_IMAP_ALLOW_HOSTS="127.0.0.1",
        **extra_env,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """The app every UI test module shares (a module may override it with settings of its own)."""
    with running_ui_server(tmp_path_factory.mktemp("ui")) as server:
        yield server


@pytest.fixture(scope="module")
def browser(ui_server: UiServer) -> Iterator[Any]:
    """Debian's headless chromium, once per module. Playwright's ``launch`` gives it a fresh
    temporary user-data-dir (it refuses ``--user-data-dir``), and each test gets its own
    context: no cookies, storage or cache carried from one test to the next."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class BrowserPage:
    """A page in a fresh browser context, with the errors the page itself raised."""

    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def shot(self, name: str) -> Path:
        """A full-page screenshot in tests/artifacts/ui/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's outcome on the test item, so a fixture can see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, ui_server: UiServer, browser: Any) -> Iterator[BrowserPage]:
    """A page in a new browser context; fails the test on any script error or
    Content-Security-Policy violation the page hit (a failed test leaves a screenshot)."""
    context = browser.new_context(viewport={"width": 1100, "height": 800}, service_workers="block")
    context.set_default_timeout(10_000)
    page = context.new_page()
    wrapped = BrowserPage(page, ui_server.base_url)
    page.on("pageerror", lambda exc: wrapped.errors.append(f"pageerror: {exc}"))

    def on_console(message: Any) -> None:
        if message.type == "error" and not EXPECTED_CONSOLE.search(message.text):
            wrapped.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    try:
        yield wrapped
        call_report = getattr(request.node, "report_call", None)
        if call_report is not None and call_report.failed:
            wrapped.shot(f"FAILED-{request.node.name}")
    finally:
        context.close()
    assert wrapped.errors == [], wrapped.errors


def register_via_api(base_url: str, email: str) -> str:
    """A user made through the API (for tests about something other than registering)."""
    response = httpx.post(f"{base_url}/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])
