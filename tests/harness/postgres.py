"""A throwaway PostgreSQL cluster on 127.0.0.1 for integration and reliability tests.

``PostgresServer`` runs Debian's server binaries (``/usr/lib/postgresql/<major>/bin``) on a
fresh cluster of its own: ``initdb`` with trust authentication for 127.0.0.1 only, TCP on a
free loopback port, no Unix socket. PostgreSQL refuses to run as root, so under root every
server command runs as the ``postgres`` user through ``runuser``; as any other user the
binaries run directly. Client commands (``createdb``, ``psql``) connect over TCP as the
``postgres`` superuser.

Speed settings: ``fsync = off`` and ``full_page_writes = off``. Both only matter when the
operating system crashes, so a killed or restarted server still keeps every commit it
acknowledged. ``synchronous_commit`` stays ``on`` on purpose: with ``off``, a server killed
with ``kill_and_restart()`` may lose commits it already acknowledged (the WAL writer flushes
them up to ~0.6 s later), which would fake data loss in "database restart during load" tests;
with ``fsync = off`` a synchronous commit costs a ``write()`` but no disk flush (pgbench
here: about 10% fewer write transactions per second than with ``off``).

    with PostgresServer(tmp_path) as pg:
        pg.create_database("mailhook")
        engine = create_async_engine(pg.url("mailhook"))
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from . import remove_service_dir, service_dir
from .ports import LOOPBACK, free_port

SUPERUSER = "postgres"
SERVER_USER = "postgres"  # the OS account the server runs as when we are root
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

StopMode = Literal["smart", "fast", "immediate"]


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with initdb and pg_ctl, else PATH's."""

    def major(path: Path) -> int:
        name = path.parent.name
        return int(name) if name.isdigit() else -1

    debian = [
        d
        for d in Path("/usr/lib/postgresql").glob("*/bin")
        if (d / "initdb").exists() and (d / "pg_ctl").exists()
    ]
    if debian:
        return max(debian, key=major)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _server_argv(argv: list[str]) -> list[str]:
    """Prefix a server command with runuser when we are root (postgres refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return argv


def _discard(pg_ctl: str, data_dir: Path, tmp_dir: Path) -> None:
    """Finaliser: stop a server still running (immediate) and delete its out-of-tree files."""
    if (data_dir / "postmaster.pid").exists():
        argv = _server_argv([pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"])
        subprocess.run(argv, capture_output=True, check=False, timeout=60, cwd=data_dir.parent)
    remove_service_dir(tmp_dir, "postgres")


class PostgresError(RuntimeError):
    """A PostgreSQL command failed; the message carries its output and the server log tail."""


class PostgresServer:
    """A private PostgreSQL server on 127.0.0.1:``port`` with data under ``tmp_dir``.

    ``settings`` adds or overrides postgresql.conf parameters (values are written verbatim, so
    quote strings: ``{"max_connections": "200", "log_statement": "'all'"}``).
    """

    def __init__(self, tmp_dir: Path, *, settings: Mapping[str, str] | None = None) -> None:
        self.tmp_dir = tmp_dir
        self.port = free_port()
        self.settings = dict(settings or {})
        self.root: Path | None = None
        self._bin_dir = find_bin_dir()
        self._finalizer: Callable[[], object] | None = None

    # -- availability -------------------------------------------------------------------------

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why a private PostgreSQL cannot run here, or None when it can."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            return "PostgreSQL server binaries (initdb, pg_ctl) not found (run scripts/system-deps.sh)"
        missing = [n for n in ("postgres", "createdb", "psql") if not (bin_dir / n).exists()]
        if missing and not all(shutil.which(n) for n in missing):
            return f"PostgreSQL commands not found in {bin_dir}: {', '.join(missing)}"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                return f"running as root but there is no {SERVER_USER!r} user to run the server as"
            if shutil.which("runuser") is None:
                return "running as root but runuser (util-linux) is not installed"
        return None

    @classmethod
    def available(cls) -> bool:
        """True when this machine can run a private PostgreSQL server."""
        return cls.unavailable_reason() is None

    # -- paths --------------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self.root is None:
            raise RuntimeError("PostgresServer has not been initialised")
        return self.root

    @property
    def data_dir(self) -> Path:
        return self._dir() / "data"

    @property
    def log_file(self) -> Path:
        return self._dir() / "postgres.log"

    def _binary(self, name: str) -> str:
        if self._bin_dir is not None and (self._bin_dir / name).exists():
            return str(self._bin_dir / name)
        found = shutil.which(name)
        if found is None:
            raise PostgresError(f"PostgreSQL command {name!r} not found")
        return found

    # -- running commands ---------------------------------------------------------------------

    def _run(
        self, argv: list[str], *, as_server: bool, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command; server commands run as the ``postgres`` user when we are root."""
        if as_server:
            argv = _server_argv(argv)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=self.root or self.tmp_dir,
        )
        if check and result.returncode != 0:
            raise PostgresError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
                "server log tail:\n" + "\n".join(self.log_lines()[-20:])
            )
        return result

    def _connection_args(self) -> list[str]:
        return ["-h", LOOPBACK, "-p", str(self.port), "-U", SUPERUSER]

    def conf_settings(self) -> dict[str, str]:
        """postgresql.conf parameters appended after initdb's defaults."""
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
            "logging_collector": "off",
        }
        settings.update(self.settings)
        return settings

    # -- lifecycle ----------------------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster (initdb); ``start()`` does this on first use."""
        if self.root is not None:
            return
        root = service_dir(self.tmp_dir, "postgres")
        self.root = root
        # Stops a forgotten server and removes its files when this object goes away.
        self._finalizer = weakref.finalize(
            self, _discard, self._binary("pg_ctl"), self.data_dir, self.tmp_dir
        )
        if os.geteuid() == 0:
            server = pwd.getpwnam(SERVER_USER)
            os.chown(root, server.pw_uid, server.pw_gid)
        self._run(
            [
                self._binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            as_server=True,
        )
        conf = "".join(f"{k} = {v}\n" for k, v in self.conf_settings().items())
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write("\n# mailhook test harness\n" + conf)
        # Trust, but only for TCP from 127.0.0.1; there is no Unix socket to connect through.
        (self.data_dir / "pg_hba.conf").write_text(
            f"# mailhook test harness\nhost all all {LOOPBACK}/32 trust\n"
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (initialising the cluster first if needed) and wait until ready."""
        self.init()
        if self.is_running():
            return
        self._run(
            [
                self._binary("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            as_server=True,
            timeout=timeout + 10,
        )

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stop the server; ``immediate`` is a crash as far as the data is concerned."""
        if not self.is_running():
            return
        self._run(
            [
                self._binary("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ],
            as_server=True,
            timeout=timeout + 10,
        )

    def restart(self, mode: StopMode = "fast", downtime: float = 0.0) -> None:
        """Stop (``pg_ctl stop -m mode``), stay down ``downtime`` seconds, start again."""
        self.stop(mode)
        if downtime > 0:
            time.sleep(downtime)
        self.start()

    def kill_and_restart(self, downtime: float = 0.0) -> None:
        """Crash the server (``-m immediate``: no checkpoint, clients cut off) and restart it.

        Start-up then runs crash recovery; every acknowledged commit must survive.
        """
        self.restart("immediate", downtime)

    def is_running(self) -> bool:
        """True when ``pg_ctl status`` finds a live postmaster for this data directory."""
        if self.root is None or not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run(
            [self._binary("pg_ctl"), "-D", str(self.data_dir), "status"],
            as_server=True,
            check=False,
        )
        return result.returncode == 0

    def close(self) -> None:
        """Stop the server and delete its directory if it lives outside ``tmp_dir``.

        The same happens when the object is garbage-collected or the interpreter exits.
        """
        if self.root is None:
            return
        self.stop("fast")
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- databases ----------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for the asyncpg driver."""
        return f"postgresql+asyncpg://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq/asyncpg connection string."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    def create_database(self, name: str) -> None:
        """Create database ``name`` (an unquoted identifier) owned by the superuser."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
        argv = [self._binary("createdb"), *self._connection_args(), name]
        self._run(argv, as_server=False)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql and return its unaligned, tuples-only output."""
        argv = [
            self._binary("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            *self._connection_args(),
            "-d",
            dbname,
            "-c",
            sql,
        ]
        return self._run(argv, as_server=False).stdout.strip()

    def log_lines(self) -> list[str]:
        """The server log written so far."""
        if self.root is None or not self.log_file.exists():
            return []
        return self.log_file.read_text(errors="replace").splitlines()
