"""A fake OpenAI-compatible model server on loopback: the only thing faked is the model.

The real httpx-based provider talks to it over HTTP. Behaviour is scripted per test: a function
from the request payload to (status, body, delay).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[dict[str, Any]], tuple[int, Any]]


def decision(action: str = "reply", reply: str = "Thanks, we will get back to you.", **extra: str) -> str:
    """The JSON text a well-behaved model returns."""
    return json.dumps({"action": action, "reply": reply, "reason": extra.get("reason", "test"), **extra})


def completion(content: str) -> dict[str, Any]:
    """A chat-completions response body."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def always_reply(payload: dict[str, Any]) -> tuple[int, Any]:
    """Reply to everything."""
    return 200, completion(decision())


@dataclass
class FakeLLM:
    """Threaded HTTP server; ``requests`` records every payload received."""

    script: Script = always_reply
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(payload)
                if fake.delay:
                    time.sleep(fake.delay)
                status, body = fake.script(payload)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                body = b'{"data": []}'
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
