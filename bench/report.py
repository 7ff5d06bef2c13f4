"""Results of the ingest benchmark and their markdown: the tables and the docs section.

``bench/ingest.py --write docs/benchmarks.md`` replaces the text between ``SECTION_BEGIN`` and
``SECTION_END`` (or appends it, creating the file with ``DOC_INTRO``), so other benchmarks can
keep sections of their own in the same file.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.lmtp_load import ThroughputRun, smtp_source_argv
from bench.servers import Processing

SECTION_BEGIN = "<!-- bench/ingest.py: begin (rewritten by `bench/ingest.py --write`) -->"
SECTION_END = "<!-- bench/ingest.py: end -->"
DOC_INTRO = """# Benchmarks

How fast mailhook takes mail in, measured with the scripts in `bench/` (how to run them, what
they measure and their caveats: `bench/README.md`). Each section is rewritten by its script and
names the machine, the commit and the date it was measured on; numbers are medians of repeated
runs and only compare with runs on the same machine.
"""


@dataclass(frozen=True)
class Options:
    """Command-line options of ``bench/ingest.py``."""

    messages: int
    sink_messages: int
    warmup: int
    sessions: int
    size: int
    repeats: int
    latency_messages: int
    latency_connections: int
    reuse: bool
    pg: str  # "auto" | "on" | "off"
    pg_fast: bool
    drain_timeout: float
    drain_between: bool
    profile: Path | None
    py_spy: str
    write: Path | None
    keep: bool


@dataclass
class TargetResult:
    """Every measurement of one target."""

    label: str
    skipped: str = ""
    throughput: list[ThroughputRun] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # server CPU per message, per run
    cores: list[float] = field(default_factory=list)  # server CPU seconds per wall second
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    jobs: dict[str, int] | None = None
    processing: Processing | None = None

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.throughput)


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _median(values: list[float]) -> str:
    return _num(statistics.median(values)) if values else "-"


def summary_table(results: list[TargetResult]) -> str:
    """One row per target: medians over the runs."""
    sink = next((r for r in results if r.throughput and "sink" in r.label), None)
    rows = [
        "| target | throughput (msg/s) | % of sink | server CPU (ms/msg) | server CPU (cores) "
        "| ack p50 (ms) | ack p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r.throughput:
            rows.append(f"| {r.label} | skipped: {r.skipped or 'no data'} | | | | | |")
            continue
        share = f"{100 * r.rate / sink.rate:.0f} %" if sink else "-"
        rows.append(
            f"| {r.label} | {_num(r.rate)} | {share} | {_median(r.cpu_ms)} | "
            f"{statistics.median(r.cores):.2f} | {_median(r.p50_ms)} | {_median(r.p99_ms)} |"
        )
    return "\n".join(rows)


def spool_table(results: list[TargetResult]) -> str:
    """mailhook only: accepted vs spool jobs, and the workers' pace once the load stopped."""
    rows = [
        "| target | messages accepted (250) | spool jobs | jobs by status | workers, no load |",
        "|---|---:|---:|---|---|",
    ]
    for r in results:
        if r.jobs is None:
            continue
        total = sum(r.jobs.values())
        verdict = "" if total == r.accepted else " **MISMATCH**"
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(r.jobs.items()))
        work = "-"
        if r.processing is not None:
            p = r.processing
            left = "queue empty" if p.backlog == 0 else f"{p.backlog} still queued"
            work = (
                f"{p.rate:.1f} jobs/s, {_num(p.cpu_ms_per_job)} ms CPU/job "
                f"({p.finished} in {p.seconds:.0f} s; {left})"
            )
        rows.append(f"| {r.label} | {r.accepted} | {total}{verdict} | {by_status} | {work} |")
    return "\n".join(rows)


def runs_table(results: list[TargetResult]) -> str:
    """Every run, so the spread behind each median is visible."""
    rows = [
        "| target | throughput runs (msg/s) | server CPU runs (ms/msg) | latency runs p50/p99 (ms) |",
        "|---|---|---|---|",
    ]
    for r in results:
        if r.throughput:
            runs = ", ".join(_num(t.rate) for t in r.throughput)
            cpu = ", ".join(_num(c) for c in r.cpu_ms)
            lat = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(r.p50_ms, r.p99_ms, strict=True))
            rows.append(f"| {r.label} | {runs} | {cpu} | {lat} |")
    return "\n".join(rows)


def invocation(opts: Options, defaults: Options) -> str:
    """The command that reproduces a run: the options that differ from the defaults."""
    args = ["bench/ingest.py"]
    for name in (
        "messages",
        "sink_messages",
        "warmup",
        "sessions",
        "size",
        "repeats",
        "latency_messages",
        "latency_connections",
        "drain_timeout",
    ):
        if getattr(opts, name) != getattr(defaults, name):
            args += [f"--{name.replace('_', '-')}", f"{getattr(opts, name):g}"]
    flags = {"reuse": "--reuse-connections", "pg_fast": "--pg-fast", "drain_between": "--drain-between"}
    args += [flag for name, flag in flags.items() if getattr(opts, name)]
    args += {"on": ["--pg"], "off": ["--no-pg"]}.get(opts.pg, [])
    if opts.write:
        args += ["--write", str(opts.write)]
    return ".venv/bin/python " + " ".join(args)


def notes(results: list[TargetResult], opts: Options, smtp_source: str, cpus: str) -> list[str]:
    """How each number was measured."""
    command = (
        " ".join(
            smtp_source_argv(
                smtp_source, 0, messages=0, sessions=opts.sessions, size=opts.size, reuse=opts.reuse
            )
        )
        .replace("-m 0", "-m N")
        .replace(":0", ":PORT")
    )
    mode = "each session keeps its connection (`-d`)" if opts.reuse else "a new connection per message"
    pg_ran = any("PostgreSQL" in r.label and r.throughput for r in results)
    pg = ""
    if pg_ran:
        pg = (
            " PostgreSQL ran with the test harness's `fsync=off` (`--pg-fast`): NOT durable."
            if opts.pg_fast
            else " PostgreSQL: a private cluster from `tests/harness/postgres.py` with `fsync=on`, "
            "`full_page_writes=on` and `synchronous_commit=on` (the harness's speed settings undone)."
        )
    drain = "waits for an empty queue before every measurement" if opts.drain_between else "does not wait"
    return [
        f"Throughput: `{command}`, N = {opts.messages} for mailhook and {opts.sink_messages} for the "
        f"sink (it is faster; a longer run measures it as precisely), after {opts.warmup} unmeasured "
        f"messages; {mode}; wall clock; median of "
        f"{opts.repeats} runs. Server CPU: user + system time of the server process (all threads) "
        "during the run, per message and per second of wall clock (cores busy); PostgreSQL's own "
        "processes are not counted.",
        f"Ack latency: {opts.latency_messages} messages over {opts.latency_connections} concurrent "
        "kept-open connections (`bench/lmtp_load.py`), from sending the final `.` to reading the "
        f"`250`; p50 and p99 per run, median of {opts.repeats} runs.",
        "mailhook: the real `mailhook serve`, `llm.provider = none` (every message is decided "
        '"escalate" at once, no model call), one mailbox. Its spool workers run in the same '
        f"process and event loop as the door, so they take their share while the door is measured "
        f"(the bench {drain}). After the runs the workers are watched for up to "
        f'{opts.drain_timeout:g} s without load ("workers, no load": jobs finished per second and '
        "the mailhook process's CPU time per finished job).",
        f"Durability: SQLite in WAL mode with `synchronous=FULL` (an fsync per commit).{pg}",
        f"The load generators run on the same {cpus}-CPU machine as the server, over loopback.",
    ]


def section(
    results: list[TargetResult], opts: Options, defaults: Options, smtp_source: str, info: dict[str, str]
) -> str:
    """The ingest section of docs/benchmarks.md (without its markers)."""
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items() if k != "date")
    bullets = "\n".join(f"- {n}" for n in notes(results, opts, smtp_source, info["CPUs (nproc)"]))
    return "\n\n".join(
        [
            "## LMTP ingest",
            f"Measured {info['date']} with `{invocation(opts, defaults)}`. Target: mailhook at "
            "50 % or more of the bare sink's throughput, with the durable spool on.",
            summary_table(results),
            "Spool check (every `250` is a job) and the workers once the load stopped:",
            spool_table(results),
            "Every run:",
            runs_table(results),
            bullets,
            f"Machine:\n\n{machine}",
        ]
    )
