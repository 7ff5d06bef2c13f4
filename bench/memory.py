"""Memory of one node with a deep queue: RSS of ``mailhook serve`` idle, with 10,000 messages
waiting in the spool, and while they drain.

The spool keeps every message sealed in the database, not in the process, so the resident set
should not grow with the queue. This measures whether it does: the real ``mailhook serve``
(SQLite) takes ``--messages`` over LMTP (Postfix's ``smtp-source``, in ``--steps`` equal parts)
while its workers are held: its model is an OpenAI-compatible fake (``tests/fakes/llm.py``) that
answers nothing until it is released, so each worker sits in one model call and every other
message stays queued. ``VmRSS`` (resident now) and ``VmHWM`` (the peak so far) are read from
``/proc/<pid>/status`` idle, after each part, and then while the released workers drain the
queue for up to ``--drain-timeout`` seconds (draining 10,000 takes several minutes).

This is a benchmark, not a test: nothing here fails on a large number.

    .venv/bin/python bench/memory.py                         # ~3 minutes, prints the table
    .venv/bin/python bench/memory.py --write docs/benchmarks.md
    .venv/bin/python bench/memory.py -n 2000 --drain-timeout 10   # a quick look
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(REPO))

from bench.ingest import log  # noqa: E402
from bench.lmtp_load import find_smtp_source, run_smtp_source, smtp_source_argv  # noqa: E402
from bench.report import Section, parsed, publish, script_parser  # noqa: E402
from bench.servers import MailhookServer, memory_kib  # noqa: E402
from tests.fakes.llm import FakeLLM, always_reply  # noqa: E402


class HeldModel:
    """The fake model, holding every request until :meth:`release` (then a ``reply``, at once)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.fake = FakeLLM(script=self._answer).start()

    def _answer(self, payload: dict[str, Any]) -> tuple[int, Any]:
        self.gate.wait()
        return always_reply(payload)

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.release()
        self.fake.stop()


@dataclass(frozen=True)
class Sample:
    """The server's memory at one point, with the spool's state then."""

    label: str
    queued: int  # jobs not finished (queued or running)
    finished: int  # jobs done (or otherwise finished)
    rss_kib: int
    hwm_kib: int


@dataclass
class Result:
    """Every run's samples (the same points in each run), and facts for the notes."""

    runs: list[list[Sample]] = field(default_factory=list)
    ingest_rate: list[float] = field(default_factory=list)  # messages/s while filling the queue
    database_mib: list[float] = field(default_factory=list)  # the data directory with the full queue
    drained: list[bool] = field(default_factory=list)


# --- measuring -----------------------------------------------------------------------------------


def sample(server: MailhookServer, label: str) -> Sample:
    """Memory and spool state now."""
    assert server.pid is not None
    counts = server.spool_counts()
    open_jobs = counts.get("queued", 0) + counts.get("running", 0)
    memory = memory_kib(server.pid)
    return Sample(label, open_jobs, sum(counts.values()) - open_jobs, memory["VmRSS"], memory["VmHWM"])


def fill(server: MailhookServer, opts: Options, smtp_source: str, result: Result) -> list[Sample]:
    """Queue ``opts.messages`` in ``opts.steps`` parts; a sample after each (once it settled)."""
    samples = []
    sent = 0
    started = time.perf_counter()
    for step in range(1, opts.steps + 1):
        count = opts.messages * step // opts.steps - sent
        argv = smtp_source_argv(
            smtp_source, server.port, messages=count, sessions=opts.sessions, size=opts.size, reuse=False
        )
        run_smtp_source(argv, count)
        sent += count
        time.sleep(opts.settle)
        samples.append(sample(server, f"{sent:,} messages queued"))
        log(f"{samples[-1]}")
    result.ingest_rate.append(sent / (time.perf_counter() - started - opts.steps * opts.settle))
    return samples


def drain(server: MailhookServer, model: HeldModel, opts: Options) -> tuple[Sample, bool]:
    """Release the model and let the workers work for up to ``opts.drain_timeout`` seconds."""
    model.release()
    deadline = time.monotonic() + opts.drain_timeout
    started = time.monotonic()
    now = sample(server, "draining")
    while now.queued and time.monotonic() < deadline:
        time.sleep(1.0)
        now = sample(server, "draining")
    seconds = time.monotonic() - started
    if not now.queued:
        time.sleep(opts.settle)
        return sample(server, f"queue drained ({now.finished:,} jobs in {seconds:.0f} s)"), True
    label = f"after {seconds:.0f} s of draining ({now.finished:,} jobs done, {now.queued:,} left)"
    return dataclasses.replace(now, label=label), False


def one_run(opts: Options, smtp_source: str, tmp: Path, result: Result) -> None:
    """Start a fresh node, measure it, stop it."""
    with ExitStack() as stack:
        model = HeldModel()
        stack.callback(model.stop)
        env = {
            "MAILHOOK_LLM_PROVIDER": "openai",
            "MAILHOOK_LLM_BASE_URL": model.fake.base_url,
            "MAILHOOK_LLM_TIMEOUT_SECONDS": "3600",  # held calls must not time out
            "MAILHOOK_LLM_MAX_RETRIES": "0",
            "MAILHOOK_SPOOL_WORKERS": str(opts.workers),
            # every message is from the same sender: let every one of them be answered
            "MAILHOOK_OUTBOUND_RATE_LIMIT_PER_SENDER_HOUR": str(10 * opts.messages),
            "MAILHOOK_BILLING_FREE_CREDITS": str(10 * opts.messages),
        }
        data_dir = tmp / f"run{len(result.runs) + 1}"
        server = stack.enter_context(MailhookServer("memory", data_dir, env=env))
        time.sleep(opts.settle)
        samples = [sample(server, "idle, after start")]
        samples += fill(server, opts, smtp_source, result)
        result.database_mib.append(sum(f.stat().st_size for f in data_dir.glob("mailhook.db*")) / 2**20)
        last, drained = drain(server, model, opts)
        samples.append(last)
        log(f"{last}")
        result.runs.append(samples)
        result.drained.append(drained)


def measure(opts: Options, tmp: Path) -> Result:
    """``opts.repeats`` fresh nodes."""
    smtp_source = find_smtp_source()
    assert smtp_source is not None, "parse_args checked"
    result = Result()
    for n in range(1, opts.repeats + 1):
        log(f"run {n}")
        one_run(opts, smtp_source, tmp, result)
    return result


# --- report --------------------------------------------------------------------------------------


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def medians(result: Result) -> list[Sample]:
    """Each point's median over the runs (the label of the first run's; without the drain
    details when there are several runs, as they differ)."""
    points = []
    for n, first in enumerate(result.runs[0]):
        same = [run[n] for run in result.runs]
        label = first.label if len(result.runs) == 1 else first.label.split(" (")[0]
        values = (
            statistics.median(getattr(p, name) for p in same)
            for name in ("queued", "finished", "rss_kib", "hwm_kib")
        )
        points.append(Sample(label, *(round(v) for v in values)))
    return points


def table(result: Result) -> str:
    """One row per point; growth over idle, and since the point before while the queue fills."""
    rows = [
        "| point | open jobs | RSS (MiB) | peak RSS, VmHWM (MiB) | RSS over idle (MiB) "
        "| over idle, per queued message (KiB) | since the point before, per added message (KiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    points = medians(result)
    idle = points[0]
    for before, point in zip([idle, *points], points, strict=False):
        per = step = "-"
        if point.queued and not point.finished:  # the queue is filling
            per = f"{(point.rss_kib - idle.rss_kib) / point.queued:.2f}"
        if point.queued > before.queued and before is not idle and not point.finished:
            step = f"{(point.rss_kib - before.rss_kib) / (point.queued - before.queued):.2f}"
        rows.append(
            f"| {point.label} | {point.queued:,} | {_mib(point.rss_kib)} | {_mib(point.hwm_kib)} "
            f"| {_mib(point.rss_kib - idle.rss_kib)} | {per} | {step} |"
        )
    return "\n".join(rows)


def render(result: Result, opts: Options) -> Section:
    """The docs section's tables and notes."""
    drained = "drained completely" if all(result.drained) else "was still draining"
    notes = [
        f"The real `mailhook serve` on SQLite, `spool.workers = {opts.workers}`, its model held (an "
        "OpenAI-compatible fake that answers only once released), so the workers each sit in one "
        "model call and the rest of the queue waits in the spool. Messages arrive over LMTP from "
        f"Postfix's `smtp-source` ({opts.sessions} sessions, {opts.size} bytes of body each, in "
        f"{opts.steps} equal parts at {statistics.median(result.ingest_rate):.0f} messages/s); each "
        f"point is read {opts.settle:g} s after the part was acknowledged.",
        "RSS is `VmRSS` of `/proc/<pid>/status` (what the process holds in memory now), the peak "
        "`VmHWM`. Per queued message: RSS over idle divided by the open jobs (it includes what the "
        "first messages cost once: buffers, caches, compiled queries); per added message: the RSS "
        "change from the point before over the messages added since.",
        f"The database files (SQLite and its WAL) held {statistics.median(result.database_mib):.0f} "
        f"MiB with the full queue: the sealed messages live there. The last row: the model "
        f"released, the workers drain the queue for up to {opts.drain_timeout:g} s (the queue "
        f"{drained}), replying through the sandbox outbox.",
        f"Medians over {len(result.runs)} runs, each on a fresh node and data directory."
        if len(result.runs) > 1
        else "One run, on a fresh node and data directory (`--repeats` for more).",
    ]
    return Section("Memory with a deep queue", [table(result)], notes)


# --- command line --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How deep a queue to build and how long to watch it drain (see parse_args)."""

    messages: int
    steps: int
    sessions: int
    size: int
    workers: int
    settle: float
    drain_timeout: float
    repeats: int
    write: Path | None
    keep: bool
    argv: list[str]


def parse_args(argv: list[str]) -> Options:
    """Options from the command line."""
    parser = script_parser(__doc__, repeats=1)
    add = parser.add_argument
    add("--messages", "-n", type=int, default=10_000, help="messages to queue (default 10,000)")
    add("--steps", type=int, default=4, help="queue them in this many equal parts, a sample after each")
    add("--sessions", "-s", type=int, default=8, help="parallel smtp-source sessions (default 8)")
    add("--size", type=int, default=4096, help="message body bytes (default 4096)")
    add("--workers", type=int, default=4, help="spool.workers (default 4, mailhook's default)")
    add("--settle", type=float, default=3.0, help="seconds to wait before each sample (default 3)")
    add("--drain-timeout", type=float, default=60.0, help="seconds to watch the drain (default 60)")
    opts = parsed(Options, parser, argv)
    if find_smtp_source() is None:
        parser.error("smtp-source not found: install Postfix (Debian: apt-get install postfix)")
    if (
        min(opts.steps, opts.sessions, opts.size, opts.workers, opts.repeats) < 1
        or opts.messages < opts.steps
    ):
        parser.error(
            "--steps, --sessions, --size, --workers and --repeats must be at least 1, --messages >= --steps"
        )
    if opts.settle < 0 or opts.drain_timeout < 0:
        parser.error("--settle and --drain-timeout must be 0 or more")
    return opts


if __name__ == "__main__":
    publish(Path(__file__).name, parse_args(sys.argv[1:]), measure, render)
