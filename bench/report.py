"""Results of the ingest benchmark and their markdown: the tables and the docs section; and the
frame every benchmark script shares (:func:`script_parser`, :func:`publish`, :func:`script_section`).

``bench/ingest.py --write docs/benchmarks.md`` replaces the text between ``SECTION_BEGIN`` and
``SECTION_END`` (or appends it, creating the file with ``DOC_INTRO``), so other benchmarks can
keep sections of their own in the same file: :func:`replace_section` does that for any script,
between its :func:`script_markers`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bench.lmtp_load import ThroughputRun, smtp_source_argv
from bench.machine import machine_info
from bench.servers import Processing

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R")
Opts = TypeVar("Opts", bound="DataclassInstance")


class ScriptOptions(Protocol):
    """What :func:`publish` needs of a script's options (see :func:`script_parser`)."""

    @property
    def write(self) -> Path | None: ...

    @property
    def keep(self) -> bool: ...

    @property
    def argv(self) -> list[str]: ...


S = TypeVar("S", bound=ScriptOptions)


def script_markers(script: str) -> tuple[str, str]:
    """The comments around the docs section that ``bench/<script> --write`` rewrites."""
    return (
        f"<!-- bench/{script}: begin (rewritten by `bench/{script} --write`) -->",
        f"<!-- bench/{script}: end -->",
    )


SECTION_BEGIN, SECTION_END = script_markers("ingest.py")
DOC_INTRO = """# Benchmarks

How fast mailhook takes mail in and answers it, how much memory a deep queue costs and how fast
webhooks leave, measured with the scripts in `bench/` (how to run them, what they measure and
their caveats: `bench/README.md`). Each section is rewritten by its script and names the machine,
the commit and the date it was measured on; numbers are medians of repeated runs and only compare
with runs on the same machine.
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


def machine_lines(info: Mapping[str, str]) -> str:
    """The machine facts of :func:`bench.machine.machine_info` as a markdown list (no date)."""
    return "\n".join(f"- {k}: {v}" for k, v in info.items() if k != "date")


def command_line(script: str, argv: list[str]) -> str:
    """The command that ran a benchmark, for its section."""
    return shlex.join([".venv/bin/python", f"bench/{script}", *argv])


def replace_section(path: Path, script: str, text: str) -> None:
    """Put ``text`` between ``script``'s markers in ``path``: in place of the old section, or at
    the end (a missing file starts with ``DOC_INTRO``). Other sections are left as they are."""
    begin, end = script_markers(script)
    block = f"{begin}\n{text.strip()}\n{end}"
    document = path.read_text() if path.exists() else DOC_INTRO
    found = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if found.search(document):
        document = found.sub(lambda _: block, document, count=1)
    else:
        document = f"{document.rstrip()}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)


def script_parser(doc: str | None, repeats: int) -> argparse.ArgumentParser:
    """A benchmark script's command line with the options they all have: ``--repeats``,
    ``--write FILE`` and ``--keep``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--repeats", "-r", type=int, default=repeats, help=f"runs of each measurement (default {repeats})")
    add("--write", type=Path, metavar="FILE", help="rewrite this script's section of FILE (the docs)")
    add("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    return parser


def parsed(options: type[Opts], parser: argparse.ArgumentParser, argv: list[str]) -> Opts:
    """``argv`` parsed into the dataclass ``options`` (its fields named like the options; a
    field ``argv`` gets ``argv`` itself, for the report)."""
    values: dict[str, Any] = vars(parser.parse_args(argv)) | {"argv": argv}
    return options(**{f.name: values[f.name] for f in dataclasses.fields(options)})


@dataclass(frozen=True)
class Section:
    """What a benchmark script reports: a title, its tables and text, and notes on the method."""

    title: str
    blocks: list[str]
    notes: list[str]


def script_section(section: Section, script: str, argv: list[str], info: Mapping[str, str]) -> str:
    """A benchmark script's docs section (without its markers): title, when and how it was run,
    its tables and text, the notes as a list, and the machine."""
    return "\n\n".join(
        [
            f"## {section.title}",
            f"Measured {info['date']} with `{command_line(script, argv)}`.",
            *section.blocks,
            "\n".join(f"- {n}" for n in section.notes),
            f"Machine:\n\n{machine_lines(info)}",
        ]
    )


def publish(
    script: str,
    opts: S,
    measure: Callable[[S, Path], R],
    render: Callable[[R, S], Section],
) -> R:
    """The frame of a benchmark script: warn when the machine is busy, ``measure`` in a temporary
    directory, ``render`` the result, add the command and the machine (and its load), print the
    section, and with ``--write`` put it into that file (:func:`replace_section`)."""
    from bench.ingest import log, work_dir  # bench.ingest imports this module

    started = time.monotonic()
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"warning: load average {load:.2f}: other work on this machine will skew the numbers")
    with work_dir(opts.keep) as tmp:
        info = machine_info(tmp)
        result = measure(opts, tmp)
    info["load average (1 min) at start / end"] = f"{load:.2f} / {os.getloadavg()[0]:.2f}"
    section = render(result, opts)
    if load > 0.5:  # said in the section itself, so a busy run is never mistaken for a clean one
        busy = (
            f"**Not an idle machine**: the 1-minute load average was {load:.2f} when the run "
            "started; other work shared the CPUs, so these numbers are pessimistic and noisy."
        )
        section = dataclasses.replace(section, notes=[*section.notes, busy])
    text = script_section(section, script, opts.argv, info)
    print(text)
    if opts.write is not None:
        replace_section(opts.write, script, text)
        log(f"wrote the {script} section of {opts.write}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return result


def section(
    results: list[TargetResult], opts: Options, defaults: Options, smtp_source: str, info: dict[str, str]
) -> str:
    """The ingest section of docs/benchmarks.md (without its markers)."""
    machine = machine_lines(info)
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
