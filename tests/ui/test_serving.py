"""How the UI is served: where, with which headers, and what it may not contain (no inline
script, no third-party or network resources), checked over HTTP and in the files themselves."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from mailhook.api.webui import CONTENT_SECURITY_POLICY, webui_dir
from tests.ui.conftest import UiServer

STATIC = Path(__file__).resolve().parents[2] / "webui" / "static"
PAGES = sorted(STATIC.glob("*.html"))


def test_the_checkout_copy_is_what_is_served() -> None:
    assert webui_dir() == STATIC
    assert {p.name for p in PAGES} >= {
        "index.html",
        "login.html",
        "register.html",
        "new.html",
        "mailbox.html",
        "persona-test.html",
        "activity.html",
        "pending.html",
        "billing.html",
        "settings.html",
    }


def test_pages_headers_and_redirects(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.base_url) as client:
        root = client.get("/")
        assert root.status_code == 302
        assert root.headers["location"] == "/app/"
        index = client.get("/app/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert index.headers["x-content-type-options"] == "nosniff"
        assert index.headers["x-frame-options"] == "DENY"
        script = client.get("/app/js/api.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        # Stripe's return address keeps only what the billing page reads.
        back = client.get("/billing", params={"checkout": "success", "session_id": "cs_1", "evil": "x"})
        assert back.status_code == 302
        assert back.headers["location"] == "/app/billing.html?checkout=success&session_id=cs_1"
        # The API is not shadowed by the UI, and nothing outside webui/static is reachable.
        assert client.get("/api/health").status_code == 200
        missing = client.get("/app/nothing-here.html")
        assert missing.status_code == 404
        assert "Page not found" in missing.text


@pytest.mark.parametrize(
    "path",
    ["/app/../pyproject.toml", "/app/%2e%2e/pyproject.toml", "/app/..%2fREADME.md", "/app/../../etc/passwd"],
)
def test_no_file_outside_the_ui_directory(ui_server: UiServer, path: str) -> None:
    response = httpx.get(ui_server.base_url + path)
    assert response.status_code in (400, 404), response.text[:200]
    assert "[project]" not in response.text
    assert "root:" not in response.text


class _Audit(HTMLParser):
    """Collects what the CSP would block or what would reach another site."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...> (inline code or style)")
            if name in ("src", "href", "action") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}> (another site)")
        if tag == "script":
            if "src" not in values or values.get("type") != "module":
                self.problems.append("<script> without src or not a module")
            self.in_script = True
        if tag == "style":
            self.problems.append("<style> element (inline style)")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append("inline script")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_hold_no_inline_code_and_load_nothing_from_elsewhere(page: Path) -> None:
    audit = _Audit()
    audit.feed(page.read_text())
    assert audit.problems == []
    for ref in re.findall(r'(?:src|href)="(/app/[^"]+)"', page.read_text()):
        assert (STATIC / ref.removeprefix("/app/")).is_file(), ref


def test_scripts_use_only_this_origin() -> None:
    for script in STATIC.rglob("*.js"):
        text = script.read_text()
        assert not re.search(r"https?://[a-z0-9]", text), script
        assert ".innerHTML" not in text and "insertAdjacentHTML(" not in text, script
        assert "eval(" not in text and "new Function" not in text, script
