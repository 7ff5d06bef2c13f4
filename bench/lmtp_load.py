"""Load generators for the ingest benchmark: Postfix's smtp-source, and an ack-latency client.

* :func:`run_smtp_source` drives throughput with Postfix's ``smtp-source -L`` (C, parallel
  sessions) and times the whole run on the wall clock.
* :func:`measure_latency` is our own LMTP client (RFC 2033) on raw sockets, one thread per
  connection: for each message it sends the data, then times from writing the final ``.`` to
  reading the reply for the one recipient. That is the time the server takes to make the
  message safe (for mailhook: commit it to the spool) and say so. Its sender,
  :func:`send_concurrently`, also serves benchmarks that need one sender per message.

Every message is unique. mailhook drops a second delivery of the same Message-ID or the same
bytes to one mailbox (``250 2.0.0 Already queued``, no new job), so repeats would measure the
dedup path. smtp-source writes ``Message-Id: <pid.fd.count@host>``, unique within a run and
across runs (new pid); our client puts a fresh token in the Message-ID and in the body.

smtp-source's ``-N`` is NOT used: it prepends a sequence number to the *recipient* address
(``1bot@agents.test``), which mailhook rightly refuses with ``550 5.1.1``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.lmtp_client import LmtpClient

HOST = "127.0.0.1"
SENDER = "a@example.org"
RECIPIENT = "bot@agents.test"
LINE = 76  # body line length (RFC 5322 recommends at most 78)


def find_smtp_source() -> str | None:
    """Path of Postfix's smtp-source (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("smtp-source")
    if found:
        return found
    debian = Path("/usr/sbin/smtp-source")
    return str(debian) if debian.exists() else None


# --- throughput: smtp-source ---------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputRun:
    """One smtp-source run: ``messages`` acknowledged in ``seconds`` of wall clock."""

    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def smtp_source_argv(
    binary: str, port: int, *, messages: int, sessions: int, size: int, reuse: bool
) -> list[str]:
    """The smtp-source command line: LMTP, ``sessions`` in parallel, ``size`` bytes of body.

    Without ``-d`` every message gets a new connection (connect, greeting, LHLO, ..., QUIT);
    with ``reuse`` (``-d``) each session keeps its connection, as Postfix's LMTP connection cache
    does (``lmtp_cache_connection = yes``).
    """
    argv = [binary, "-L", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    if reuse:
        argv.append("-d")
    return [*argv, "-f", SENDER, "-t", RECIPIENT, f"{HOST}:{port}"]


def run_smtp_source(argv: list[str], messages: int, timeout: float = 900.0) -> ThroughputRun:
    """Run smtp-source and time it. It exits non-zero at the first non-2xx reply."""
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"smtp-source exited {result.returncode}: {(result.stderr or result.stdout).strip()[-500:]}"
        )
    return ThroughputRun(messages, seconds)


# --- ack latency: our own LMTP client --------------------------------------------------------------


def make_message(token: str, size: int, sender: str = SENDER) -> bytes:
    """A unique RFC 5322 message with about ``size`` bytes of body (CRLF, no line starts with '.')."""
    head = (
        f"From: <{sender}>\r\n"
        f"To: <{RECIPIENT}>\r\n"
        f"Subject: ingest benchmark {token}\r\n"
        "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{token}@bench.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    )
    lines = [f"benchmark message {token}"]
    filled = len(lines[0]) + 2
    while filled < size:
        width = min(LINE, max(1, size - filled - 2))
        lines.append("x" * width)
        filled += width + 2
    return (head + "\r\n".join(lines) + "\r\n").encode()


class Latencies:
    """p50, p99 and the largest of ``latencies_ms`` (a field of the dataclass using this)."""

    latencies_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def worst(self) -> float:
        return max(self.latencies_ms)


@dataclass
class LatencyRun(Latencies):
    """Per-message ack latencies (ms) of one run, and what the server answered."""

    latencies_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (linear interpolation between closest ranks)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


class LmtpConnection(LmtpClient):
    """The tests' strict LMTP client (``tests/lmtp_client.py``) with TCP_NODELAY, so the final
    '.' is not held back by Nagle, and a timed one-recipient send without dot-stuffing (our
    messages have no line starting with a dot)."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        super().__init__(HOST, port, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.expect("220", self.greeting)
        self.expect("250", self.lhlo)

    @staticmethod
    def expect(code: str, reply: str) -> None:
        if not reply.startswith(code):
            raise RuntimeError(f"expected {code}, got {reply!r}")

    def send_timed(self, message: bytes, sender: str = SENDER) -> tuple[str, float]:
        """Send one message to one recipient; the reply after DATA and its latency in seconds."""
        self.expect("250", self.command(f"MAIL FROM:<{sender}>"))
        self.expect("250", self.command(f"RCPT TO:<{RECIPIENT}>"))
        self.expect("354", self.command("DATA"))
        self.sock.sendall(message)
        started = time.perf_counter()
        self.sock.sendall(b".\r\n")
        reply = self.reply()  # RFC 2033: one reply per accepted recipient; we sent one
        return reply, time.perf_counter() - started

    def close(self) -> None:
        self.__exit__(None, None, None)


@dataclass(frozen=True)
class Acked:
    """The server's answer to one message: ``seconds`` from the final '.', read at ``at``."""

    reply: str
    seconds: float
    at: float  # time.perf_counter() when the reply was read


def send_concurrently(
    port: int, messages: list[tuple[str, bytes]], connections: int
) -> tuple[list[Acked], float]:
    """Send ``messages`` (envelope sender, bytes) over ``connections`` concurrent kept-open
    connections, all starting together once every connection is open; one :class:`Acked` per
    message (same order) and the wall-clock seconds from the start to the last answer."""
    count = min(connections, len(messages))
    acked: list[Acked | None] = [None] * len(messages)
    start = threading.Barrier(count + 1)  # all connections open, then go together
    errors: list[BaseException] = []

    def worker(first: int) -> None:
        try:
            conn = LmtpConnection(port)
        except BaseException as exc:
            errors.append(exc)
            start.abort()
            return
        try:
            start.wait()
            for n in range(first, len(messages), count):
                sender, data = messages[n]
                reply, seconds = conn.send_timed(data, sender)
                acked[n] = Acked(reply, seconds, time.perf_counter())
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in range(count)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a failed connect: reported below
        start.wait(timeout=60)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"LMTP client failed: {errors[0]!r}") from errors[0]
    return [a for a in acked if a is not None], time.perf_counter() - began


def measure_latency(port: int, *, messages: int, connections: int, size: int) -> LatencyRun:
    """Send ``messages`` unique messages over ``connections`` concurrent connections."""
    run_id = uuid.uuid4().hex[:12]
    outgoing = [(SENDER, make_message(f"{run_id}.{n}", size)) for n in range(messages)]
    acks, seconds = send_concurrently(port, outgoing, connections)
    run = LatencyRun(seconds=seconds)
    for ack in acks:
        if ack.reply.startswith("2"):
            run.accepted += 1
            run.latencies_ms.append(ack.seconds * 1000.0)
        else:
            run.refused.append(ack.reply)
    if not run.latencies_ms:
        raise RuntimeError(f"no message accepted; replies: {run.refused[:3]}")
    return run
