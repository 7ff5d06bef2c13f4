"""A fake Stripe API on loopback, and a webhook signer using Stripe's real scheme.

The real ``stripe`` library talks to it over HTTP, form-encoded as it talks to Stripe. Like
Stripe, a repeated ``Idempotency-Key`` gets the first response back (and a different request
under a used key is an ``idempotency_error``), so tests can prove a double click makes one
Checkout Session. Only what mailhook calls is implemented: creating Checkout Sessions and
reading Prices.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import stripe

API_KEY = "sk_test_mailhook_fake"
WEBHOOK_SECRET = "whsec_mailhook_fake_secret"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header made by the stripe library's own signing helper.

    The helper takes text; for the test of a body that is not UTF-8 the same HMAC is made here.
    """
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        stamp = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={mac}"
    header: str = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp)
    return header


def event(kind: str, obj: dict[str, Any], event_id: str) -> bytes:
    """A webhook body as Stripe sends it."""
    body = {"id": event_id, "object": "event", "type": kind, "created": int(time.time())}
    body["data"] = {"object": obj}
    body["livemode"] = False
    return json.dumps(body).encode()


@dataclass
class Recorded:
    """One request the fake received (the form flattened as Stripe's encoding sends it)."""

    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    """Threaded HTTP server; ``requests`` and ``sessions`` record what happened."""

    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _replies: dict[str, tuple[dict[str, str], int, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def checkout_requests(self) -> list[Recorded]:
        """Every POST /v1/checkout/sessions, retries and repeats included."""
        return [r for r in self.requests if r.path == "/v1/checkout/sessions"]

    def handle(
        self, method: str, path: str, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, Any]:
        """Answer one request (called under the lock, so a key is never used twice at once)."""
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", "Invalid API Key provided")
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(form)
        if method == "GET" and path.startswith("/v1/prices/"):
            price = self.prices.get(path.removeprefix("/v1/prices/"))
            return (200, price) if price else (404, _error("invalid_request_error", "No such price"))
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _create_session(self, form: dict[str, str]) -> dict[str, Any]:
        number = len(self.sessions) + 1
        session = {
            "id": f"cs_test_{number}",
            "object": "checkout.session",
            "mode": form.get("mode"),
            "client_reference_id": form.get("client_reference_id"),
            "url": f"https://checkout.stripe.test/c/pay/cs_test_{number}",
            "payment_status": "unpaid",
            "status": "open",
        }
        self.sessions.append(session)
        return session

    def start(self) -> FakeStripe:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, at every test teardown.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def respond(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Idempotency as Stripe does it: same key and same request → the first response."""
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        with self._lock:
            self.requests.append(Recorded(method, path, form, headers))
            key = headers.get("idempotency-key")
            if method == "POST" and key and key in self._replies:
                first_form, status, data = self._replies[key]
                if first_form != form:
                    message = "Keys for idempotent requests can only be used with the same parameters"
                    return 400, json.dumps(_error("idempotency_error", message)).encode()
                return status, data
            status, reply = self.handle(method, path, form, headers)
            data = json.dumps(reply).encode()
            if method == "POST" and key:
                self._replies[key] = (form, status, data)
            return status, data


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, data = fake.respond(method, self.path.split("?")[0], body, headers)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
