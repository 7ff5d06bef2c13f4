"""SSRF-safe document fetching: what is refused before any connection, and real fetches on loopback.

Every "public" host name here is answered by an injected resolver and every request that could
leave the machine goes to an httpx MockTransport: the only real sockets are test servers on
127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pymupdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailhook import __version__
from mailhook.errors import TemporaryFailure, ValidationFailed
from mailhook.net.fetch import (
    FetchRefused,
    FetchUnavailable,
    blocked_reason,
    fetch_document,
)
from tests.harness.ports import free_port

PUBLIC_IP = "93.184.216.34"


# --- a real HTTP server on loopback -----------------------------------------------------------


@dataclass
class Recorder:
    """What the test server saw, and a switch that releases handlers still sleeping."""

    requests: list[dict[str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def tiny_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Price list 2025")
    data: bytes = doc.tobytes()
    doc.close()
    return data


class Handler(BaseHTTPRequestHandler):
    """Routes by path; every request is recorded (headers only)."""

    recorder: Recorder

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.recorder.requests.append(
            {"path": url.path, "host": self.headers.get("Host", ""), "ua": self.headers.get("User-Agent", "")}
        )
        route = getattr(self, "route_" + url.path.strip("/").split("/")[0].replace("-", "_"), None)
        if route is None:
            self.reply(404, "text/plain", b"no such page")
        else:
            route(url.path, parse_qs(url.query))

    def reply(self, status: int, content_type: str, body: bytes, *, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_doc(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "text/plain; charset=utf-8", "Opening hours: 9 to 17 ✓".encode())

    def route_latin1(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "text/html; charset=ISO-8859-1", "<p>Café</p>".encode("latin-1"))

    def route_json(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "application/json", b'{"plan": "pro"}')

    def route_pdf(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "application/pdf", tiny_pdf())

    def route_broken_pdf(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "application/pdf", b"%PDF-1.4 nothing else")

    def route_image(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "image/png", b"\x89PNG\r\n\x1a\n")

    def route_untyped(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "", b"what am I")

    def route_big(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "text/plain", b"x" * 5000)

    def route_big_unannounced(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(200, "text/plain", b"y" * 5000, length=False)

    def route_redirect(self, path: str, query: dict[str, list[str]]) -> None:
        self.redirect(query["to"][0])

    def route_loop(self, path: str, query: dict[str, list[str]]) -> None:
        hop = int(path.rsplit("/", 1)[-1])
        self.redirect(f"/loop/{hop + 1}")

    def route_hops(self, path: str, query: dict[str, list[str]]) -> None:
        left = int(path.rsplit("/", 1)[-1])
        if left == 0:
            self.route_doc(path, query)
        else:
            self.redirect(f"/hops/{left - 1}")

    def route_error(self, path: str, query: dict[str, list[str]]) -> None:
        self.reply(503, "text/plain", b"down")

    def route_slow(self, path: str, query: dict[str, list[str]]) -> None:
        self.recorder.stop.wait(3)
        self.reply(200, "text/plain", b"too late")

    def route_drip(self, path: str, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            if self.recorder.stop.wait(0.05):
                return
            self.wfile.write(b".")
            self.wfile.flush()


@dataclass
class Server:
    port: int
    recorder: Recorder

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def run_server(context: ssl.SSLContext | None = None) -> Iterator[Server]:
    recorder = Recorder()
    handler = type("BoundHandler", (Handler,), {"recorder": recorder})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], recorder)
    finally:
        recorder.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    with run_server() as running:
        yield running


@pytest.fixture
def other_server() -> Iterator[Server]:
    with run_server() as running:
        yield running


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    """An injected resolver: names in ``table`` only; anything else is an error, not real DNS."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"unexpected lookup of {host}")
        return list(table[host])

    return resolve


@pytest.fixture
async def no_network() -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Request]]]:
    """A client whose transport fails the test if anything tries to connect."""
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise AssertionError(f"connection attempted to {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        yield client, attempts


# --- refused before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/x", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback address inside an IPv6"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "'this network'"),
        ("http://[fd00::1]/", "unique local"),
    ],
)
async def test_internal_addresses_are_refused_before_connecting(
    url: str, reason: str, no_network: tuple[httpx.AsyncClient, list[httpx.Request]]
) -> None:
    client, attempts = no_network
    with pytest.raises(FetchRefused, match=reason):
        await fetch_document(url, client=client)
    assert attempts == []


async def test_a_name_that_resolves_inside_is_refused(
    no_network: tuple[httpx.AsyncClient, list[httpx.Request]],
) -> None:
    client, attempts = no_network
    resolver = resolver_for({"intranet.example.com": ["10.1.2.3"]})
    with pytest.raises(FetchRefused, match=r"intranet\.example\.com resolves to 10\.1\.2\.3, a private"):
        await fetch_document("https://intranet.example.com/wiki", client=client, resolver=resolver)
    assert attempts == []


async def test_one_private_address_among_public_ones_is_enough_to_refuse(
    no_network: tuple[httpx.AsyncClient, list[httpx.Request]],
) -> None:
    client, attempts = no_network
    resolver = resolver_for({"mixed.example.com": [PUBLIC_IP, "192.168.1.10"]})
    with pytest.raises(FetchRefused, match=r"192\.168\.1\.10"):
        await fetch_document("http://mixed.example.com/", client=client, resolver=resolver)
    assert attempts == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example.com/doc.txt",
        "file:///etc/passwd",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "gopher://example.com/",
        "//example.com/no-scheme",
        "http:///no-host",
        "not a url at all",
    ],
)
async def test_only_http_and_https_urls(
    url: str, no_network: tuple[httpx.AsyncClient, list[httpx.Request]]
) -> None:
    client, attempts = no_network
    calls: list[str] = []
    with pytest.raises(FetchRefused):
        await fetch_document(url, client=client, resolver=resolver_for({}, calls))
    assert attempts == [] and calls == []


@pytest.mark.parametrize(
    "url", ["http://user:hunter2@example.com/", "https://user@example.com/", "http://:pw@example.com/"]
)
async def test_userinfo_urls_are_refused_without_echoing_the_password(
    url: str, no_network: tuple[httpx.AsyncClient, list[httpx.Request]]
) -> None:
    client, attempts = no_network
    with pytest.raises(FetchRefused, match="user name or password") as caught:
        await fetch_document(url, client=client, resolver=resolver_for({"example.com": [PUBLIC_IP]}))
    assert "hunter2" not in str(caught.value) and attempts == []


def test_refusals_are_validation_failures_and_outages_are_temporary() -> None:
    assert issubclass(FetchRefused, ValidationFailed)
    assert issubclass(FetchUnavailable, TemporaryFailure)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.255.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "169.254.169.254",
        "100.127.255.254",
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "2001:db8::1",  # documentation
    ],
)
def test_blocked_address_kinds(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", [PUBLIC_IP, "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


# --- pinning, without any connection (MockTransport) ------------------------------------------


async def test_the_vetted_address_is_used_with_the_original_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/plain"}, text="hello")

    # A rebinding resolver: public at the check, loopback at any later lookup.
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        document = await fetch_document("https://docs.example.com/faq?x=1", client=client, resolver=rebinding)
    assert document.text == "hello" and document.final_url == "https://docs.example.com/faq?x=1"
    (request,) = seen
    assert request.url.host == PUBLIC_IP and request.url.path == "/faq" and request.url.query == b"x=1"
    assert request.headers["host"] == "docs.example.com"
    assert request.extensions["sni_hostname"] == "docs.example.com"
    assert request.headers["user-agent"] == f"mailhook/{__version__}"


async def test_each_redirect_hop_is_vetted_again() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://metadata.example.com/latest/"})

    resolver = resolver_for({"docs.example.com": [PUBLIC_IP], "metadata.example.com": ["169.254.169.254"]})
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(FetchRefused, match=r"metadata\.example\.com resolves to 169\.254\.169\.254"):
            await fetch_document("http://docs.example.com/", client=client, resolver=resolver)
    assert seen == [f"http://{PUBLIC_IP}/"]


def mock_client(content_type: str = "text/plain", body: bytes = b"ok") -> httpx.AsyncClient:
    """A client that answers every request itself, so nothing is ever connected."""
    return httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, headers={"content-type": content_type}, content=body)
        )
    )


@pytest.mark.parametrize(
    ("entry", "url", "allowed"),
    [
        ("Wiki.Internal.", "http://wiki.internal/", True),
        ("wiki.internal:8080", "http://wiki.internal:8080/", True),
        ("wiki.internal:8080", "http://wiki.internal:8081/", False),
        ("wiki.internal", "http://wiki.internal:9999/", True),
        ("other.internal", "http://wiki.internal/", False),
        ("10.0.0.8", "http://10.0.0.8/", True),
        ("[fd00::8]:80", "http://[fd00::8]/", True),
        ("fd00::8", "http://[fd00:0::8]:8080/", True),
    ],
)
async def test_allow_list_spellings(entry: str, url: str, allowed: bool) -> None:
    resolver = resolver_for({"wiki.internal": ["10.0.0.8"]})
    async with mock_client() as client:
        if allowed:
            document = await fetch_document(url, client=client, allow_hosts=[entry], resolver=resolver)
            assert document.text == "ok"
        else:
            with pytest.raises(FetchRefused, match="add the host to the allowed hosts"):
                await fetch_document(url, client=client, allow_hosts=[entry], resolver=resolver)


@pytest.mark.parametrize("entry", ["", "user@wiki.internal", "wiki.internal/path", "http://x"])
async def test_malformed_allow_list_entries_are_refused(entry: str) -> None:
    async with mock_client() as client:
        with pytest.raises(FetchRefused, match="is not a host name"):
            await fetch_document("http://1.1.1.1/", client=client, allow_hosts=[entry])


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/plain; charset=rot13", "caf\ufffd"),
        ("text/plain; charset=base64", "caf\ufffd"),
        ("text/plain; charset=no-such-charset", "caf\ufffd"),
        ('TEXT/PLAIN; Charset="latin-1"', "café"),
        ("text/markdown", "caf\ufffd"),
    ],
)
async def test_odd_charsets_fall_back_to_utf8(content_type: str, expected: str) -> None:
    resolver = resolver_for({"docs.example.com": [PUBLIC_IP]})
    async with mock_client(content_type, "café".encode("latin-1")) as client:
        document = await fetch_document("http://docs.example.com/", client=client, resolver=resolver)
    assert document.text == expected


async def test_unresolvable_host_is_a_temporary_failure(
    no_network: tuple[httpx.AsyncClient, list[httpx.Request]],
) -> None:
    client, _ = no_network
    with pytest.raises(FetchUnavailable, match="cannot resolve"):
        await fetch_document("http://gone.example.com/", client=client, resolver=resolver_for({}))


# --- real fetches from a loopback server ------------------------------------------------------


async def test_allowed_fetch_returns_text_and_sends_our_user_agent(server: Server) -> None:
    document = await fetch_document(server.url("/doc"), allow_hosts=["127.0.0.1"])
    assert document.text == "Opening hours: 9 to 17 ✓"
    assert document.content_type == "text/plain" and document.final_url == server.url("/doc")
    assert server.recorder.requests == [
        {"path": "/doc", "host": f"127.0.0.1:{server.port}", "ua": f"mailhook/{__version__}"}
    ]


async def test_allow_private_opens_the_whole_private_network(server: Server) -> None:
    document = await fetch_document(server.url("/json"), allow_private=True)
    assert (document.content_type, document.text) == ("application/json", '{"plan": "pro"}')


async def test_name_is_pinned_to_the_vetted_address_on_a_real_socket(server: Server) -> None:
    resolver = resolver_for({"docs.internal": ["127.0.0.1"]})
    document = await fetch_document(
        server.url("/doc", host="docs.internal"), allow_hosts=["docs.internal"], resolver=resolver
    )
    assert "Opening hours" in document.text
    assert server.recorder.requests[0]["host"] == f"docs.internal:{server.port}"


async def test_allowed_server_cannot_redirect_to_a_forbidden_port(
    server: Server, other_server: Server
) -> None:
    target = other_server.url("/doc")
    with pytest.raises(FetchRefused, match=r"^127\.0\.0\.1 is a loopback address; add the host"):
        await fetch_document(server.url(f"/redirect?to={target}"), allow_hosts=[f"127.0.0.1:{server.port}"])
    assert other_server.recorder.requests == []


async def test_allowed_name_cannot_redirect_to_an_unlisted_host(server: Server) -> None:
    resolver = resolver_for({"docs.internal": ["127.0.0.1"]})
    with pytest.raises(FetchRefused, match="loopback"):
        await fetch_document(
            server.url(f"/redirect?to={server.url('/doc')}", host="docs.internal"),
            allow_hosts=["docs.internal"],
            resolver=resolver,
        )
    assert [r["path"] for r in server.recorder.requests] == ["/redirect"]


async def test_redirects_are_followed_up_to_five(server: Server) -> None:
    document = await fetch_document(server.url("/hops/5"), allow_private=True)
    assert "Opening hours" in document.text and document.final_url == server.url("/hops/0")
    assert document.url == server.url("/hops/5")


async def test_redirect_loops_stop_after_five_hops(server: Server) -> None:
    with pytest.raises(FetchRefused, match="more than 5 redirects"):
        await fetch_document(server.url("/loop/0"), allow_private=True)
    assert len(server.recorder.requests) == 6


async def test_redirect_to_another_scheme_is_refused(server: Server) -> None:
    with pytest.raises(FetchRefused, match="only http and https"):
        await fetch_document(server.url("/redirect?to=file:///etc/passwd"), allow_private=True)


@pytest.mark.parametrize("path", ["/big", "/big-unannounced"])
async def test_bodies_over_max_bytes_are_refused(server: Server, path: str) -> None:
    with pytest.raises(FetchRefused, match="larger than 1000 bytes"):
        await fetch_document(server.url(path), allow_private=True, max_bytes=1000)


async def test_slow_server_times_out(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchUnavailable):
        await fetch_document(server.url("/slow"), allow_private=True, timeout=0.3)
    assert time.monotonic() - started < 1.5


async def test_a_drip_fed_body_cannot_outlast_the_deadline(server: Server) -> None:
    # Each byte arrives well inside the read timeout; only the overall deadline can stop this.
    started = time.monotonic()
    with pytest.raises(FetchUnavailable, match=r"within 0\.5 s"):
        await fetch_document(server.url("/drip"), allow_private=True, timeout=0.5)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(("path", "kind"), [("/image", "image/png"), ("/untyped", "none")])
async def test_non_text_content_is_refused(server: Server, path: str, kind: str) -> None:
    with pytest.raises(FetchRefused, match=f"content type '{kind}' is not a text document"):
        await fetch_document(server.url(path), allow_private=True)


async def test_declared_charset_is_honoured(server: Server) -> None:
    document = await fetch_document(server.url("/latin1"), allow_private=True)
    assert document.text == "<p>Café</p>" and document.content_type == "text/html"


async def test_pdf_documents_come_back_as_text(server: Server) -> None:
    document = await fetch_document(server.url("/pdf"), allow_private=True)
    assert document.content_type == "application/pdf" and "Price list 2025" in document.text


async def test_unreadable_pdf_is_refused(server: Server) -> None:
    with pytest.raises(FetchRefused, match="PDF could not be read"):
        await fetch_document(server.url("/broken-pdf"), allow_private=True)


async def test_http_errors(server: Server) -> None:
    with pytest.raises(FetchRefused, match="HTTP 404"):
        await fetch_document(server.url("/nowhere"), allow_private=True)
    with pytest.raises(FetchUnavailable, match="HTTP 503"):
        await fetch_document(server.url("/error"), allow_private=True)


async def test_connection_refused_is_temporary() -> None:
    with pytest.raises(FetchUnavailable, match="cannot connect"):
        await fetch_document(f"http://127.0.0.1:{free_port()}/doc", allow_private=True)


# --- TLS: the certificate is checked against the name, not the pinned address -----------------


def make_tls(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for ``name`` and a client that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cafile=str(cert_file))
    return server_ctx, client_ctx


async def test_https_checks_the_certificate_against_the_host_name(tmp_path: Path) -> None:
    server_ctx, client_ctx = make_tls(tmp_path, "docs.internal")
    resolver = resolver_for({"docs.internal": ["127.0.0.1"], "other.internal": ["127.0.0.1"]})
    with run_server(server_ctx) as tls_server:
        async with httpx.AsyncClient(verify=client_ctx, trust_env=False) as client:
            url = f"https://docs.internal:{tls_server.port}/doc"
            document = await fetch_document(url, client=client, allow_private=True, resolver=resolver)
            assert "Opening hours" in document.text
            with pytest.raises(FetchUnavailable, match="cannot connect"):
                await fetch_document(
                    url.replace("docs.internal", "other.internal"),
                    client=client,
                    allow_private=True,
                    resolver=resolver,
                )
