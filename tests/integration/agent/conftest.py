"""Fixtures of the agent tests: a document server and a second model server, both on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import update

from mailhook.services import Services
from mailhook.store.models import Mailbox
from tests.fakes.llm import FakeLLM

#: Settings that let mailhook reach the loopback test servers (documents and model URLs).
LOOPBACK_ALLOWED = {
    "MAILHOOK_AGENT_FETCH_ALLOW_HOSTS": "127.0.0.1",
    "MAILHOOK_LLM_MAILBOX_ALLOW_HTTP": "true",
}


@dataclass(frozen=True)
class Page:
    """What the document server answers for one path."""

    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200


@dataclass
class DocumentServer:
    """A threaded HTTP server on 127.0.0.1 serving ``pages``; ``requests`` records (path, headers)."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def start(self) -> DocumentServer:
        docs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                docs.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                page = docs.pages.get(self.path, Page(b"not found", status=404))
                self.send_response(page.status)
                self.send_header("content-type", page.content_type)
                self.send_header("content-length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def doc_server() -> Iterator[DocumentServer]:
    server = DocumentServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class HeaderRecordingLLM(FakeLLM):
    """:class:`FakeLLM` that also keeps the ``Authorization`` header of every request (or "")."""

    authorizations: list[str] = field(default_factory=list)

    def start(self) -> HeaderRecordingLLM:
        super().start()
        assert self.server is not None
        handler = self.server.RequestHandlerClass
        recorded = self.authorizations

        class Recording(handler):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:
                recorded.append(self.headers.get("authorization", ""))
                super().do_POST()

        self.server.RequestHandlerClass = Recording
        return self


@pytest.fixture
def second_llm() -> Iterator[HeaderRecordingLLM]:
    """Another OpenAI-compatible fake: where a mailbox's own model URL points."""
    fake = HeaderRecordingLLM().start()
    try:
        yield fake
    finally:
        fake.stop()


async def configure_mailbox(services: Services, address: str = "bot@agents.test", **values: Any) -> None:
    """Set columns of a mailbox row directly (as a migration or an older API could have)."""
    async with services.sessions() as session, session.begin():
        await session.execute(update(Mailbox).where(Mailbox.address == address).values(**values))


def is_selection(payload: dict[str, Any]) -> bool:
    """True for the document-selection call (its system prompt is the selection one)."""
    return str(payload["messages"][0]["content"]).startswith("You choose which")


def user_turn(payload: dict[str, Any]) -> str:
    return str(payload["messages"][1]["content"])
