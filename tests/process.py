"""Run ``mailhook serve`` as a real child process, as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness.ports import free_port

MAILHOOK = str(Path(sys.executable).with_name("mailhook"))


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment minus any MAILHOOK_* of the caller, plus a private data dir and ports."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOOK_")}
    return {
        **clean,
        "MAILHOOK_DATA_DIR": str(data_dir),
        "MAILHOOK_LMTP_PORT": str(free_port()),
        "MAILHOOK_HTTP_PORT": str(free_port()),
        "MAILHOOK_NEW_USER_PASSWORD": "a long enough password",
        **extra,
    }


def cli(env: dict[str, str], *args: str) -> str:
    """Run a CLI command that must succeed; returns stdout."""
    result = subprocess.run(
        [MAILHOOK, *args], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class MailhookProcess:
    """One ``mailhook serve``; logs go to a file so a full pipe can never block it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MAILHOOK_HTTP_PORT']}/api/health"

    def start(self, timeout: float = 60.0) -> MailhookProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([MAILHOOK, "serve"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"mailhook exited: {self.log_path.read_text()[-2000:]}"
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"mailhook did not become healthy: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
