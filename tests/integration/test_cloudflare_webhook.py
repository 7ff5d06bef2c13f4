"""The Cloudflare webhook door, ``POST /api/v1/inbound/cloudflare``.

The first part sends the exact requests ``cloudflare/worker.js`` makes (signature computed here,
independently of mailhook's code) to the real app under uvicorn, on SQLite and PostgreSQL. The
last part runs the real worker under ``wrangler dev`` (workerd, on loopback) and delivers through
its local email endpoint ``/cdn-cgi/handler/email``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from mailhook.app import create_app
from mailhook.services import Services, build_services
from mailhook.settings import Settings
from mailhook.store.accounts import Accounts
from mailhook.store.migrate import upgrade
from mailhook.store.models import SpoolJob
from tests.conftest import IN_CI
from tests.fakes.llm import FakeLLM
from tests.harness.ports import free_port
from tests.http import serve_http
from tests.lmtp_client import make_message
from tests.support import outbox, wait_for_jobs

SECRET = "cf-shared-secret-for-tests-0123456789"
PATH = "/api/v1/inbound/cloudflare"
MiB = 1024 * 1024
LIMIT = 25 * MiB

enabled = pytest.mark.parametrize("extra_env", [{"MAILHOOK_CLOUDFLARE_WEBHOOK_SECRET": SECRET}])


def encode(address: str) -> str:
    """``encodeURIComponent``: what the worker puts in the envelope headers."""
    return quote(address, safe="!~*'()")


def signed(
    body: bytes,
    *,
    sender: str = "alice@example.org",
    to: str = "bot@agents.test",
    secret: str = SECRET,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of a worker request: HMAC-SHA256 over "ts\\nfrom\\nto\\n" + body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    envelope_from, envelope_to = encode(sender), encode(to)
    payload = f"{ts}\n{envelope_from}\n{envelope_to}\n".encode() + body
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "message/rfc822",
        "X-Mailhook-Timestamp": ts,
        "X-Mailhook-Envelope-From": envelope_from,
        "X-Mailhook-Envelope-To": envelope_to,
        "X-Mailhook-Signature": f"v1={digest}",
    }


async def job_count(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SpoolJob)) or 0)


async def jobs(services: Services) -> list[SpoolJob]:
    async with services.sessions() as session:
        return list((await session.scalars(select(SpoolJob).order_by(SpoolJob.id))).all())


def sized_message(size: int) -> bytes:
    """A valid message of exactly ``size`` bytes."""
    head = make_message(body="")
    return head + b"x" * (size - len(head))


# --- the endpoint ---------------------------------------------------------------------------------


@enabled
async def test_signed_post_is_spooled_and_answered(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message(subject="Order question via Cloudflare")
    response = await api.post(PATH, content=raw, headers=signed(raw))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["duplicate"] is False and len(answer["job_ids"]) == 1

    finished = await wait_for_jobs(services, 1)
    job = finished[0]
    assert job.id == answer["job_ids"][0]
    assert (job.source, job.envelope_sender, job.recipient) == (
        "webhook",
        "alice@example.org",
        "bot@agents.test",
    )
    assert job.size == len(raw)
    replies = await outbox(services)
    assert len(replies) == 1
    assert replies[0]["To"].endswith("<alice@example.org>") or replies[0]["To"] == "alice@example.org"
    assert replies[0]["Auto-Submitted"] == "auto-replied"


@enabled
async def test_repost_is_a_duplicate_with_one_job(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message()
    first = await api.post(PATH, content=raw, headers=signed(raw))
    again = await api.post(PATH, content=raw, headers=signed(raw))
    later = await api.post(PATH, content=raw, headers=signed(raw, timestamp=int(time.time()) + 5))
    assert first.status_code == again.status_code == later.status_code == 202
    assert first.json()["duplicate"] is False
    assert again.json() == later.json() == {"job_ids": first.json()["job_ids"], "duplicate": True}
    await wait_for_jobs(services, 1)
    assert await job_count(services) == 1
    assert len(await outbox(services)) == 1


@enabled
async def test_plus_tag_and_utf8_envelope(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message()
    sender = "jürgen+x%y@exämple.org"
    response = await api.post(
        PATH, content=raw, headers=signed(raw, sender=sender, to="Bot+Orders@agents.test")
    )
    assert response.status_code == 202, response.text
    job = (await jobs(services))[0]
    assert (job.envelope_sender, job.recipient) == (sender, "Bot+Orders@agents.test")


@enabled
async def test_unauthenticated_requests_are_401_and_spool_nothing(
    api: httpx.AsyncClient, services: Services
) -> None:
    raw = make_message()
    good = signed(raw)
    cases: dict[str, dict[str, str]] = {
        "no headers at all": {"Content-Type": "message/rfc822"},
        "wrong secret": signed(raw, secret="not-the-secret-at-all-0123456789"),
        "forged hex": {**good, "X-Mailhook-Signature": "v1=" + "0" * 64},
        "other scheme": {**good, "X-Mailhook-Signature": good["X-Mailhook-Signature"].replace("v1=", "v2=")},
        "bare hex": {**good, "X-Mailhook-Signature": good["X-Mailhook-Signature"][3:]},
        "truncated": {**good, "X-Mailhook-Signature": good["X-Mailhook-Signature"][:-2]},
        "other body": signed(raw + b"tampered"),
    }
    for name in (
        "X-Mailhook-Signature",
        "X-Mailhook-Timestamp",
        "X-Mailhook-Envelope-From",
        "X-Mailhook-Envelope-To",
    ):
        cases[f"missing {name}"] = {k: v for k, v in good.items() if k != name}
    for name, headers in cases.items():
        response = await api.post(PATH, content=raw, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["permanent"] is False, name
    assert await job_count(services) == 0


@enabled
async def test_signature_is_bound_to_the_envelope(api: httpx.AsyncClient, services: Services) -> None:
    await Accounts(services.sessions).add_mailbox("owner@example.com", "sales@agents.test")
    raw = make_message()
    for_bot = signed(raw)
    to_sales = {**for_bot, "X-Mailhook-Envelope-To": encode("sales@agents.test")}
    other_sender = {**for_bot, "X-Mailhook-Envelope-From": encode("mallory@example.org")}
    # With "." as the separator, ("eve@evil", "com.bot@agents.test") would sign the same bytes
    # as ("eve@evil.com", "bot@agents.test"); the newline separator keeps them apart.
    split = signed(raw, sender="eve@evil", to="com.bot@agents.test")
    resplit = {
        **split,
        "X-Mailhook-Envelope-From": encode("eve@evil.com"),
        "X-Mailhook-Envelope-To": encode("bot@agents.test"),
    }
    for headers in (to_sales, other_sender, resplit):
        response = await api.post(PATH, content=raw, headers=headers)
        assert response.status_code == 401, response.text
    assert await job_count(services) == 0
    assert (await api.post(PATH, content=raw, headers=for_bot)).status_code == 202


@enabled
async def test_timestamps_outside_the_window_are_401_inside_202(
    api: httpx.AsyncClient, services: Services
) -> None:
    raw = make_message()
    for skew in (-301, 301, -10_000, 10**9):
        response = await api.post(PATH, content=raw, headers=signed(raw, timestamp=int(time.time()) + skew))
        assert response.status_code == 401, skew
        assert "stale" in response.json()["detail"]
    assert await job_count(services) == 0
    response = await api.post(PATH, content=raw, headers=signed(raw, timestamp=int(time.time()) - 240))
    assert response.status_code == 202, response.text


@enabled
async def test_non_integer_timestamp_is_400(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message()
    for value in ("", "soon", "1.5e9", "-5", "17 9", "+1700000000", "0x6553f100"):
        headers = {**signed(raw), "X-Mailhook-Timestamp": value}
        response = await api.post(PATH, content=raw, headers=headers)
        assert response.status_code == 400, (value, response.text)
    assert await job_count(services) == 0


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@enabled
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_past_25_mib_is_413(api: httpx.AsyncClient, services: Services, framing: str) -> None:
    raw = sized_message(LIMIT + 1)
    headers = signed(raw)
    content: Any = raw if framing == "content-length" else _chunks(raw)
    response = await api.post(PATH, content=content, headers=headers)
    assert ("content-length" in response.request.headers) is (framing == "content-length")
    assert response.status_code == 413, response.text
    assert response.json()["permanent"] is True
    assert await job_count(services) == 0


@pytest.mark.parametrize(
    "extra_env",
    [{"MAILHOOK_CLOUDFLARE_WEBHOOK_SECRET": SECRET, "MAILHOOK_CLOUDFLARE_MAX_MESSAGE_BYTES": "4096"}],
)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_the_cap_is_exact(api: httpx.AsyncClient, services: Services, framing: str) -> None:
    for size, status in ((4096, 202), (4097, 413)):
        raw = sized_message(size)
        content: Any = raw if framing == "content-length" else _chunks(raw, 1000)
        response = await api.post(PATH, content=content, headers=signed(raw))
        assert response.status_code == status, (size, response.text)
    assert await job_count(services) == 1


@enabled
async def test_malformed_message_is_422_permanent(api: httpx.AsyncClient, services: Services) -> None:
    for raw in (b"", b"\r\n\r\n", b"just some text without any header\r\n", b"\r\nFrom: a@b\r\n\r\nbody\r\n"):
        response = await api.post(PATH, content=raw, headers=signed(raw))
        assert response.status_code == 422, (raw, response.text)
        answer = response.json()
        assert answer["permanent"] is True and answer["error"] == "MalformedMessage"
        assert "parsed" in answer["reason"]
    assert await job_count(services) == 0


@enabled
async def test_unknown_recipient_is_422_permanent(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message(to="nobody@agents.test")
    for to in ("nobody@agents.test", "bot@elsewhere.test", "no-at-sign"):
        response = await api.post(PATH, content=raw, headers=signed(raw, to=to))
        assert response.status_code == 422, response.text
        answer = response.json()
        assert answer["permanent"] is True and answer["error"] == "UnknownRecipient"
        assert answer["reason"] == "5.1.1 No such mailbox here"
    assert await job_count(services) == 0


@enabled
async def test_envelope_with_control_characters_is_refused(
    api: httpx.AsyncClient, services: Services
) -> None:
    raw = make_message()
    response = await api.post(PATH, content=raw, headers=signed(raw, sender="a@b.org\r\nX-Evil: 1"))
    assert response.status_code == 422
    bad_utf8 = signed_raw_header(raw, {**signed(raw), "X-Mailhook-Envelope-From": "%FF%FE"})
    assert (await api.post(PATH, content=raw, headers=bad_utf8)).status_code == 400
    assert await job_count(services) == 0


def signed_raw_header(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """Re-sign ``headers`` whose envelope values are already encoded (possibly badly)."""
    ts = headers["X-Mailhook-Timestamp"]
    payload = (
        f"{ts}\n{headers['X-Mailhook-Envelope-From']}\n{headers['X-Mailhook-Envelope-To']}\n".encode() + body
    )
    digest = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    return {**headers, "X-Mailhook-Signature": f"v1={digest}"}


async def test_endpoint_is_off_without_a_secret(api: httpx.AsyncClient, services: Services) -> None:
    raw = make_message()
    for secret in (SECRET, ""):
        response = await api.post(PATH, content=raw, headers=signed(raw, secret=secret))
        assert response.status_code == 404
    assert await job_count(services) == 0


# --- database outage: temporary (503), then the worker's retry is accepted ------------------------


@pytest.mark.postgres
async def test_database_down_is_503_then_recovers(
    make_settings: Any, own_postgres: Any, fake_llm: FakeLLM
) -> None:
    settings: Settings = make_settings(
        MAILHOOK_DATABASE_URL=own_postgres.url("outage"),
        MAILHOOK_LLM_PROVIDER="openai",
        MAILHOOK_LLM_BASE_URL=fake_llm.base_url,
        MAILHOOK_CLOUDFLARE_WEBHOOK_SECRET=SECRET,
    )
    services = build_services(settings)
    await upgrade(services.engine)
    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    await accounts.add_mailbox("owner@example.com", "bot@agents.test")
    app = create_app(services, migrate=False)
    async with (
        serve_http(app, settings.http.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        raw = make_message(subject="during the outage")
        await asyncio.to_thread(own_postgres.stop)
        during = await client.post(PATH, content=raw, headers=signed(raw))
        assert during.status_code == 503, during.text
        assert during.json()["permanent"] is False, "the worker throws: Cloudflare retries later"
        await asyncio.to_thread(own_postgres.start)
        after = await client.post(PATH, content=raw, headers=signed(raw))
        assert after.status_code == 202, after.text
        await wait_for_jobs(services, 1)
        assert len(await outbox(services)) == 1


# --- the real worker under wrangler dev ------------------------------------------------------------

WORKER_DIR = Path(__file__).parents[2] / "cloudflare"
WRANGLER = WORKER_DIR / "node_modules" / ".bin" / "wrangler"


@pytest.fixture(scope="session")
def wrangler() -> Path:
    """cloudflare/node_modules/.bin/wrangler, installed from cloudflare/package-lock.json if missing."""
    if not WRANGLER.exists():
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            if IN_CI:
                pytest.fail("node and npm are missing in CI: the worker test needs them")
            pytest.skip("node/npm not installed: the Cloudflare worker is not tested under wrangler")
        # --ignore-scripts: workerd and esbuild come as per-platform npm packages; their install
        # scripts would only re-check (or try to download) what those packages already hold.
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=WORKER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not WRANGLER.exists():
            message = f"npm ci in cloudflare/ failed: {done.stderr[-2000:]}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return WRANGLER


class WranglerDev:
    """``wrangler dev --local`` on loopback with a copy of the worker; its output goes to a file."""

    def __init__(self, binary: Path, work: Path, mailhook_url: str, secret: str) -> None:
        self.work = work
        self.port = free_port()
        self.log = work / "wrangler.log"
        work.mkdir(parents=True)
        for name in ("worker.js", "wrangler.toml"):
            shutil.copy(WORKER_DIR / name, work / name)
        self.argv = [
            str(binary),
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--inspector-ip",
            "127.0.0.1",
            "--inspector-port",
            str(free_port()),
            "--var",
            f"MAILHOOK_URL:{mailhook_url}",
            "--var",
            f"MAILHOOK_SECRET:{secret}",
            "--persist-to",
            str(work / "state"),
            "--show-interactive-dev-session=false",
        ]
        self.env = {
            **os.environ,
            "CI": "true",
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_LOG_PATH": str(work / "logs"),
            "XDG_CONFIG_HOME": str(work / "config"),
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def start(self, timeout: float = 90.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "Ready on" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"wrangler dev did not start:\n{self.output()[-4000:]}")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # wrangler stops its workerd children itself
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this test started
            self.process.wait(timeout=15)

    async def deliver(self, sender: str, to: str, raw: bytes) -> httpx.Response:
        """What Email Routing does: run the worker's email() for one recipient."""
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            return await client.post("/cdn-cgi/handler/email", params={"from": sender, "to": to}, content=raw)


@pytest.fixture
async def worker(wrangler: Path, api: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[WranglerDev]:
    dev = WranglerDev(wrangler, tmp_path / "worker", str(api.base_url).rstrip("/"), SECRET)
    await dev.start()
    try:
        yield dev
    finally:
        dev.stop()


@pytest.mark.parametrize(
    "extra_env",
    [{"MAILHOOK_CLOUDFLARE_WEBHOOK_SECRET": SECRET, "MAILHOOK_CLOUDFLARE_MAX_MESSAGE_BYTES": str(64 * 1024)}],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_real_worker_delivers_and_rejects(
    worker: WranglerDev, api: httpx.AsyncClient, services: Services
) -> None:
    # Accepted: the worker signs and posts, mailhook spools, the pipeline replies.
    raw = make_message(subject="Through the real worker")
    accepted = await worker.deliver("alice@example.org", "bot@agents.test", raw)
    assert accepted.status_code == 200, (accepted.text, worker.output())
    assert "successfully processed" in accepted.text
    finished = await wait_for_jobs(services, 1)
    assert (finished[0].source, finished[0].recipient) == ("webhook", "bot@agents.test")
    assert len(await outbox(services)) == 1

    # The same message again (Cloudflare may run the worker twice): acknowledged, no second job.
    again = await worker.deliver("alice@example.org", "bot@agents.test", raw)
    assert again.status_code == 200, again.text
    assert await job_count(services) == 1

    # Unknown recipient: mailhook says 422, the worker calls setReject (a permanent SMTP error).
    nobody = make_message(to="nobody@agents.test")
    rejected = await worker.deliver("alice@example.org", "nobody@agents.test", nobody)
    assert rejected.status_code == 400, rejected.text
    assert "rejected email" in rejected.text and "No such mailbox" in rejected.text

    # Over mailhook's cap (64 KiB here): mailhook's own 413 says permanent, so it bounces too.
    big = sized_message(100 * 1024)
    too_big = await worker.deliver("alice@example.org", "bot@agents.test", big)
    assert too_big.status_code == 400, too_big.text
    assert "rejected email" in too_big.text and "too big" in too_big.text
    assert await job_count(services) == 1


@enabled
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_real_worker_throws_when_mailhook_refuses_or_is_down(
    wrangler: Path, api: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    # A secret that does not match: 401, and the worker throws (temporary), never setReject.
    wrong = WranglerDev(wrangler, tmp_path / "wrong", str(api.base_url).rstrip("/"), "some-other-secret-012")
    await wrong.start()
    try:
        response = await wrong.deliver("alice@example.org", "bot@agents.test", make_message())
    finally:
        wrong.stop()
    assert response.status_code == 500, response.text
    assert "mailhook answered 401" in response.text
    assert "rejected" not in response.text
    assert await job_count(services) == 0

    # Nothing listening at MAILHOOK_URL: the worker throws too.
    down = WranglerDev(wrangler, tmp_path / "down", f"http://127.0.0.1:{free_port()}", SECRET)
    await down.start()
    try:
        response = await down.deliver("alice@example.org", "bot@agents.test", make_message())
    finally:
        down.stop()
    assert response.status_code == 500, response.text
    assert "mailhook unreachable" in response.text
