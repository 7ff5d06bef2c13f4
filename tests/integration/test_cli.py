"""The ``mailhook`` command as a user runs it: a real process, real ports, real files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port

MAILHOOK = str(Path(sys.executable).with_name("mailhook"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOOK_")}
    return {
        **clean,
        "MAILHOOK_DATA_DIR": str(tmp_path / "var"),
        "MAILHOOK_LMTP_PORT": str(free_port()),
        "MAILHOOK_HTTP_PORT": str(free_port()),
        "MAILHOOK_NEW_USER_PASSWORD": "a long enough password",
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILHOOK, *args], check=False, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["user"],
        ["user", "create"],
        ["mailbox", "add"],
        ["check"],
        ["dead-letter"],
    ],
)
def test_help_everywhere(env: dict[str, str], command: list[str]) -> None:
    result = run(env, *command, "--help")
    assert result.returncode == 0
    assert "Usage: mailhook" in result.stdout


def test_user_and_mailbox_commands(env: dict[str, str]) -> None:
    created = run(env, "user", "create", "Owner@Example.com")
    assert created.returncode == 0, created.stderr
    assert "created user owner@example.com" in created.stdout
    assert "generated_secret" in created.stderr, "first start says it generated keys"
    data = Path(env["MAILHOOK_DATA_DIR"])
    assert oct((data / "encryption.key").stat().st_mode & 0o777) == "0o600"
    again = run(env, "user", "create", "owner@example.com")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "generated_secret" not in again.stderr, "keys are generated once"
    short = run({**env, "MAILHOOK_NEW_USER_PASSWORD": "short"}, "user", "create", "x@example.com")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    added = run(env, "mailbox", "add", "bot@agents.test", "--owner", "owner@example.com", "--mode", "gated")
    assert added.returncode == 0 and "added mailbox bot@agents.test" in added.stdout
    orphan = run(env, "mailbox", "add", "x@agents.test", "--owner", "ghost@example.com")
    assert orphan.returncode == 1 and "no user ghost@example.com" in orphan.stderr
    bad = run(env, "mailbox", "add", "not an address", "--owner", "owner@example.com")
    assert bad.returncode == 1 and "not an e-mail address" in bad.stderr
    assert "a long enough password" not in created.stderr + created.stdout


def test_bad_config_is_one_clear_line(env: dict[str, str]) -> None:
    result = run({**env, "MAILHOOK_LMTP_PORT": "many"}, "migrate")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: MAILHOOK_LMTP_PORT: 'many' is not a number"


def test_check_reports_problems(env: dict[str, str]) -> None:
    fresh = run(env, "check")
    assert fresh.returncode == 1
    assert "needs migrations" in fresh.stderr and "llm.provider is none" in fresh.stderr
    down = run(
        {
            **env,
            "MAILHOOK_LLM_PROVIDER": "openai",
            "MAILHOOK_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        },
        "check",
    )
    assert "unreachable" in down.stderr


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    # A file, not a pipe: nobody reads a pipe while the server runs, and a full pipe blocks it.
    with (tmp_path / "serve.log").open("w+") as log:
        process = subprocess.Popen([MAILHOOK, "serve"], env=env, stdout=log, stderr=log, text=True)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_serve_answers_health_and_listens_on_lmtp(env: dict[str, str], served: subprocess.Popen[str]) -> None:
    url = f"http://127.0.0.1:{env['MAILHOOK_HTTP_PORT']}/api/health"
    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(url, timeout=2)
            break
        except httpx.HTTPError:
            assert served.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
    assert response.status_code == 200 and response.json()["database"] == "ok"
    with socket.create_connection(("127.0.0.1", int(env["MAILHOOK_LMTP_PORT"])), timeout=5) as lmtp:
        assert lmtp.recv(100).startswith(b"220 ")
    served.terminate()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is -15.
    served.wait(timeout=20)
    log = (Path(env["MAILHOOK_DATA_DIR"]).parent / "serve.log").read_text()
    assert '"event": "stopped"' in log, "SIGTERM runs the graceful shutdown"


def wait_healthy(env: dict[str, str], process: subprocess.Popen[str], timeout: float = 30) -> None:
    url = f"http://127.0.0.1:{env['MAILHOOK_HTTP_PORT']}/api/health"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "server exited"
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.2)


def test_serve_reload_restarts_the_app_when_a_watched_file_changes(
    env: dict[str, str], tmp_path: Path
) -> None:
    watched = tmp_path / "src"
    watched.mkdir()
    (watched / "module.py").write_text("VALUE = 1\n")
    log_path = tmp_path / "serve.log"
    with log_path.open("w+") as log:
        argv = [MAILHOOK, "serve", "--reload", "--reload-dir", str(watched)]
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, text=True)
        try:
            wait_healthy(env, process)
            assert log_path.read_text().count('"event": "lmtp_listening"') == 1
            time.sleep(1.0)  # the reloader compares modification times; make the change visible
            (watched / "module.py").write_text("VALUE = 2\n")
            deadline = time.monotonic() + 30
            while log_path.read_text().count('"event": "lmtp_listening"') < 2:
                assert process.poll() is None, "the reloader exited"
                assert time.monotonic() < deadline, f"no restart after the change:\n{log_path.read_text()}"
                time.sleep(0.2)
            wait_healthy(env, process)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "module.py" in log_path.read_text(), "the log says which file changed"
