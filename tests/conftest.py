"""Shared fixtures: settings in a temp data dir, databases (SQLite and a real PostgreSQL),
running services, and the fake model server."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailhook.logs import configure_logging
from mailhook.services import Services, build_services
from mailhook.settings import Settings, ensure_secrets, load_settings
from mailhook.store.migrate import upgrade
from tests.fakes.llm import FakeLLM
from tests.harness.ports import free_port

IN_CI = os.environ.get("CI") == "true"

configure_logging("INFO", json=True)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real PostgreSQL for the session (Debian package, loopback, started here)."""
    from tests.harness.postgres import PostgresServer

    if not PostgresServer.available():
        if IN_CI:
            pytest.fail("PostgreSQL binaries missing in CI: scripts/system-deps.sh should install them")
        pytest.skip("PostgreSQL server binaries are not installed")
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """A private PostgreSQL (with an ``outage`` database) that a test may stop and start."""
    from tests.harness.postgres import PostgresServer

    if not PostgresServer.available():
        if IN_CI:
            pytest.fail("PostgreSQL binaries missing in CI: scripts/system-deps.sh should install them")
        pytest.skip(PostgresServer.unavailable_reason() or "no PostgreSQL")
    server = PostgresServer(tmp_path / "pg")
    server.start()
    server.create_database("outage")
    try:
        yield server
    finally:
        server.close()


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every DB test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'mailhook.db'}"
    server = request.getfixturevalue("postgres_server")
    name = f"t{next(_db_counter)}_{os.getpid()}"
    server.create_database(name)
    return str(server.url(name))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings in a temp data dir from ``MAILHOOK_*``-style overrides."""

    def make(**env: str) -> Settings:
        base = {
            "MAILHOOK_DATA_DIR": str(tmp_path / "data"),
            "MAILHOOK_LMTP_PORT": str(free_port()),
            "MAILHOOK_HTTP_PORT": str(free_port()),
            "MAILHOOK_SPOOL_POLL_SECONDS": "0.2",
            "MAILHOOK_SPOOL_BACKOFF_SECONDS": "0.2",
            "MAILHOOK_SPOOL_NODE_NAME": "test-node",
        }
        settings, _ = ensure_secrets(load_settings({**base, **env}))
        return settings

    return make


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """The fake model server (the only faked component: the model itself)."""
    fake = FakeLLM().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """mailhook's JSON log lines written during the test, DEBUG and up (tests/support.py)."""
    from tests.support import captured_log

    with captured_log("DEBUG") as stream:
        yield stream


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Per-test settings overrides: ``@pytest.mark.parametrize("extra_env", [{...}])``."""
    return {}


@pytest.fixture
async def services(
    make_settings: Callable[..., Settings], database_url: str, fake_llm: FakeLLM, extra_env: dict[str, str]
) -> AsyncIterator[Services]:
    """Migrated services on both databases, talking to the fake model."""
    settings = make_settings(
        MAILHOOK_DATABASE_URL=database_url,
        MAILHOOK_LLM_PROVIDER="openai",
        MAILHOOK_LLM_BASE_URL=fake_llm.base_url,
        MAILHOOK_LLM_MAX_RETRIES="0",
        **extra_env,
    )
    built = build_services(settings)
    await upgrade(built.engine)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def runtime(services: Services) -> AsyncIterator[Any]:
    """Doors and workers running in the test's event loop, with one user and mailbox."""
    from mailhook.app import Runtime
    from mailhook.store.accounts import Accounts

    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    await accounts.add_mailbox("owner@example.com", "bot@agents.test", display_name="Support Bot")
    running = Runtime(services, migrate=False)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Any]:
    """The whole app under real uvicorn (its lifespan runs the doors and workers), with an
    owner and the bot@agents.test mailbox; yields an httpx client on its base URL."""
    import httpx

    from mailhook.app import create_app
    from mailhook.store.accounts import Accounts
    from tests.http import serve_http

    accounts = Accounts(services.sessions)
    await accounts.create_user("owner@example.com", "correct horse battery")
    await accounts.add_mailbox("owner@example.com", "bot@agents.test", display_name="Support Bot")
    app = create_app(services, migrate=False)
    async with (
        serve_http(app, services.settings.http.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client
