"""The servers the benchmarks talk to, each in a process of its own on 127.0.0.1.

* :class:`SinkServer`: ``python -m bench.sink`` (bare aiosmtpd LMTP, the baseline).
* :class:`MailhookServer`: the real ``mailhook serve`` on SQLite (default) or PostgreSQL, in a
  fresh data directory, with one user and the mailbox ``bot@agents.test``; no model
  (``llm.provider = none``, so every message is decided "escalate" at once) unless a benchmark
  passes settings of its own. :func:`cpu_seconds` and :func:`memory_kib` read its CPU time and
  memory from /proc.
* :func:`postgres_server`: a private PostgreSQL from ``tests/harness/postgres.py``, made durable
  again (the test harness turns ``fsync`` off for speed; a benchmark of a durable spool must not).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.lmtp_load import HOST, RECIPIENT

REPO = Path(__file__).resolve().parents[1]
OWNER = "owner@example.com"
OWNER_PASSWORD = "bench-owner-password-1"  # a throwaway user in a throwaway data directory

if str(REPO) not in sys.path:  # tests.harness is not an installed package
    sys.path.insert(0, str(REPO))

from tests.harness.ports import free_port, wait_listening  # noqa: E402


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: only the process this object started."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


class SinkServer:
    """The bare aiosmtpd LMTP sink in a child process."""

    name = "sink"

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_file = log_dir / "sink.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.sink", "--port", str(self.port)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_listening(self.port, timeout=30):
            self.__exit__(None, None, None)
            raise RuntimeError(f"LMTP sink did not start:\n{_log_tail(self.log_file)}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            _stop(self.process)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def mailhook_binary() -> str:
    """The ``mailhook`` console script of the running venv."""
    for candidate in (Path(sys.executable).parent / "mailhook", REPO / ".venv" / "bin" / "mailhook"):
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("mailhook is not installed in this venv (pip install -e .)")


class MailhookServer:
    """``mailhook serve`` in a child process with its own data directory and ports.

    ``serve`` replaces the ``mailhook serve`` command line, to measure a variant (say, a script
    that patches something and then calls ``mailhook.cli.main``) under the same conditions.
    ``env`` adds or overrides ``MAILHOOK_*`` settings (also for the CLI calls at start).
    """

    def __init__(
        self,
        name: str,
        data_dir: Path,
        database_url: str = "",
        serve: list[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.serve = serve or [mailhook_binary(), "serve"]
        self.data_dir = data_dir
        self.port = free_port()
        self.http_port = free_port()
        self.log_file = data_dir / "mailhook.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHOOK_")}
        self.env |= {
            "MAILHOOK_DATA_DIR": str(data_dir),
            "MAILHOOK_LMTP_PORT": str(self.port),
            "MAILHOOK_HTTP_PORT": str(self.http_port),
            "MAILHOOK_LLM_PROVIDER": "none",
            "MAILHOOK_LOG_LEVEL": "WARNING",
            "MAILHOOK_SPOOL_NODE_NAME": "bench",
            "MAILHOOK_NEW_USER_PASSWORD": OWNER_PASSWORD,
        }
        if database_url:
            self.env["MAILHOOK_DATABASE_URL"] = database_url
        self.env |= env or {}  # a benchmark's own settings (a model, a relay, ...) win

    def _cli(self, *args: str) -> None:
        result = subprocess.run(
            [mailhook_binary(), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"mailhook {' '.join(args)} failed: {result.stderr.strip()[-800:]}")

    def __enter__(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._cli("user", "create", OWNER)
        self._cli("mailbox", "add", RECIPIENT, "--owner", OWNER)
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(self.serve, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy(timeout=60)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            _stop(self.process)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /api/health``: status code and JSON body."""
        url = f"http://{HOST}:{self.http_port}/api/health"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def api(self, method: str, path: str, body: object = None, token: str = "") -> Any:
        """One JSON request to the HTTP API; the decoded answer (an error status raises)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        url = f"http://{HOST}:{self.http_port}{path}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data else None

    def login(self) -> str:
        """A bearer token of the owner (``POST /api/v1/auth/login``)."""
        answer = self.api("POST", "/api/v1/auth/login", {"email": OWNER, "password": OWNER_PASSWORD})
        return str(answer["token"])

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mailhook serve exited:\n{_log_tail(self.log_file)}")
            with contextlib.suppress(OSError):
                if self.health()[0] == 200 and wait_listening(self.port, timeout=1):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"mailhook did not become healthy:\n{_log_tail(self.log_file)}")

    def spool_counts(self) -> dict[str, int]:
        """Spool jobs by status, from the health endpoint."""
        status, body = self.health()
        if status != 200:
            raise RuntimeError(f"health answered {status}")
        return {str(k): int(v) for k, v in body.get("spool", {}).items()}

    def open_jobs(self) -> int:
        """Spool jobs queued or running."""
        return _open(self.spool_counts())

    def watch_workers(self, window: float) -> Processing:
        """Watch the workers for up to ``window`` seconds (no load): jobs finished, queue left."""
        started = time.monotonic()
        cpu = cpu_seconds(self.pid) if self.pid else 0.0
        before = self.spool_counts()
        while True:
            now = self.spool_counts()
            elapsed = time.monotonic() - started
            backlog = now.get("queued", 0) + now.get("running", 0)
            if backlog == 0 or elapsed >= window:
                finished = sum(now.values()) - sum(before.values()) + _open(before) - backlog
                cpu = (cpu_seconds(self.pid) if self.pid else 0.0) - cpu
                return Processing(finished=finished, seconds=elapsed, backlog=backlog, cpu_seconds=cpu)
            time.sleep(0.25)


def _open(counts: dict[str, int]) -> int:
    return counts.get("queued", 0) + counts.get("running", 0)


@dataclass(frozen=True)
class Processing:
    """What the workers did while watched: ``finished`` jobs in ``seconds``; ``backlog`` left."""

    finished: int
    seconds: float
    backlog: int
    cpu_seconds: float  # of the mailhook process while watched

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.cpu_seconds / self.finished if self.finished else 0.0

    @property
    def rate(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (the peak so far) of process ``pid``, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL run cannot happen here, or None when it can."""
    try:
        from tests.harness.postgres import PostgresServer
    except Exception as exc:  # the harness is being written by someone else: skip, don't fail
        return f"tests/harness/postgres.py is not usable: {exc!r}"
    try:
        return PostgresServer.unavailable_reason()
    except Exception as exc:
        return f"PostgresServer.unavailable_reason() failed: {exc!r}"


#: The harness's speed settings undone: a durable spool needs the WAL flushed at commit.
DURABLE_PG = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


@contextlib.contextmanager
def postgres_server(tmp_dir: Path, *, durable: bool = True) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL with an empty ``mailhook`` database: (SQLAlchemy URL, version)."""
    from tests.harness.postgres import PostgresServer

    with PostgresServer(tmp_dir, settings=DURABLE_PG if durable else None) as pg:
        pg.create_database("mailhook")
        version = pg.psql("SHOW server_version")
        yield pg.url("mailhook"), version
