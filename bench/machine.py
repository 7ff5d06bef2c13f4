"""What a benchmark ran on: CPUs, memory, Python, library versions, and the disk's fsync cost.

A durable spool pays one flush per commit, so the data directory's ``fdatasync`` latency is
measured and reported next to the CPU: it bounds what any durable ingest can do on the machine.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(len(os.sched_getaffinity(0)))


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype,source", str(path)], capture_output=True, text=True, check=True
        ).stdout.split("\n")[1]
        fstype, source = out.split()
        return f"{fstype} on {source}"
    except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
        return "unknown"


def fdatasync_ms(directory: Path, rounds: int = 200) -> float:
    """Median milliseconds of a 4 KiB append + ``fdatasync`` in ``directory``."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        block = b"x" * 4096
        for _ in range(rounds):
            os.write(fd, block)
            started = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - started) * 1000.0)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(samples)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _postgres_version() -> str:
    try:
        from tests.harness.postgres import find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            return "not installed"
        argv = [str(bin_dir / "postgres"), "--version"]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def _commit() -> str:
    """The mailhook commit measured, marked when the working tree has uncommitted changes."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "mailhook"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes under mailhook/)" if dirty else head


def machine_info(data_dir: Path) -> dict[str, str]:
    """Facts about this machine, for the report; ``data_dir`` is where the databases live."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mailhook commit": _commit(),
        "CPU": _cpu_model(),
        "CPUs (nproc)": _nproc(),
        "memory": _memory(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "aiosmtpd / SQLAlchemy / aiosqlite / asyncpg": " / ".join(
            _version(p) for p in ("aiosmtpd", "sqlalchemy", "aiosqlite", "asyncpg")
        ),
        "SQLite library": sqlite3.sqlite_version,
        "PostgreSQL": _postgres_version(),
        "data directory": f"{_filesystem(data_dir)}; 4 KiB write + fdatasync median "
        f"{fdatasync_ms(data_dir):.2f} ms",
    }
