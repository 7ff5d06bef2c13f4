"""A fake Anthropic Messages API on loopback: the only thing faked is the model.

The real ``anthropic`` SDK talks to it over HTTP (``POST /v1/messages``), so its retries, timeouts
and error classes are the ones production sees. Behaviour is scripted per test: a function from the
received request to a :class:`Reply` (status, body, headers, delay); :func:`in_turn` plays a list.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "claude-test-1"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What the server answers: a dict is sent as JSON, bytes as they are."""

    status: int = 200
    body: dict[str, Any] | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Script = Callable[[Received], Reply]


def decision(action: str = "reply", reply: str = "Thanks, we will get back to you.", **extra: str) -> str:
    """The JSON text a well-behaved model returns."""
    return json.dumps({"action": action, "reply": reply, "reason": extra.pop("reason", "test"), **extra})


def message(text: str, *, stop_reason: str = "end_turn", model: str = DEFAULT_MODEL) -> Reply:
    """A successful Messages API response carrying one text block."""
    return Reply(
        body={
            "id": "msg_fake_01",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 120,
                "output_tokens": 30,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1024,
            },
        }
    )


def error(status: int, kind: str, text: str = "fake error", **headers: str) -> Reply:
    """An error response in the API's shape (``{"type": "error", "error": {...}}``)."""
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return Reply(status=status, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def always_reply(received: Received) -> Reply:
    """Reply to everything."""
    return message(decision())


def in_turn(*replies: Reply) -> Script:
    """Answer with ``replies`` in order, then keep repeating the last one."""
    queue = itertools.chain(replies, itertools.repeat(replies[-1]))
    lock = threading.Lock()

    def script(received: Received) -> Reply:
        with lock:
            return next(queue)

    return script


@dataclass
class FakeAnthropic:
    """Threaded HTTP server; ``requests`` records every request received."""

    script: Script = always_reply
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        """What ``llm.base_url`` is set to (the SDK appends ``/v1/messages``)."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> FakeAnthropic:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll keeps stop() (and so each test's teardown) fast.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers still sleeping out a scripted delay
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _answer(self, received: Received) -> Reply:
        self.requests.append(received)
        reply = self.script(received)
        if reply.delay:
            self._stopping.wait(reply.delay)
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                received = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    payload=json.loads(raw or b"{}"),
                )
                if self.path != "/v1/messages":
                    self._send(error(404, "not_found_error", f"no route {self.path}"))
                    return
                self._send(fake._answer(received))

            def _send(self, reply: Reply) -> None:
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", "req_fake_01")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (a timeout test): nothing to report

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
