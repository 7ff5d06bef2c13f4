"""LMTP ingest benchmark: mailhook's LMTP door against a bare aiosmtpd LMTP sink.

For each target (bare sink; mailhook on SQLite; mailhook on PostgreSQL when a server binary is
installed), started in a process of its own on 127.0.0.1, it measures ``--repeats`` times:

* throughput: ``smtp-source -L`` sends N messages over ``--sessions`` parallel sessions;
  messages per second of wall clock, and the server process's CPU time per message;
* ack latency: our LMTP client sends ``--latency-messages`` over ``--latency-connections``
  connections and times each message from the final ``.`` to the ``250``; p50 and p99.

It prints medians as a markdown table, with mailhook's throughput as a percentage of the sink's.
For mailhook it then checks that every accepted message became a spool job, and watches the
workers for up to ``--drain-timeout`` seconds without load to report how fast they process.

mailhook's spool commit is durable: SQLite in WAL mode with ``synchronous=FULL`` (an fsync per
transaction), PostgreSQL with ``fsync=on`` and ``synchronous_commit=on``. This is a benchmark,
not a test: nothing here fails on a slow number.

    .venv/bin/python bench/ingest.py                       # print the table
    .venv/bin/python bench/ingest.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(REPO))

from bench.lmtp_load import (  # noqa: E402
    ThroughputRun,
    find_smtp_source,
    measure_latency,
    run_smtp_source,
    smtp_source_argv,
)
from bench.machine import machine_info  # noqa: E402
from bench.report import DOC_INTRO, SECTION_BEGIN, SECTION_END, Options, TargetResult, section  # noqa: E402
from bench.servers import (  # noqa: E402
    MailhookServer,
    SinkServer,
    cpu_seconds,
    postgres_server,
    postgres_unavailable,
)


def log(message: str) -> None:
    """Progress on stderr; the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- measuring -----------------------------------------------------------------------------------


def measure_target(
    target: SinkServer | MailhookServer, result: TargetResult, opts: Options, smtp_source: str
) -> None:
    """Throughput then latency, ``opts.repeats`` times; then (mailhook) jobs and workers."""
    mailhook = target if isinstance(target, MailhookServer) else None
    messages = opts.messages if mailhook else opts.sink_messages
    argv = smtp_source_argv(
        smtp_source, target.port, messages=messages, sessions=opts.sessions, size=opts.size, reuse=opts.reuse
    )
    pid = target.pid
    assert pid is not None
    if opts.warmup:  # first connections, first SQL compilations, caches: not measured
        warm = smtp_source_argv(
            smtp_source,
            target.port,
            messages=opts.warmup,
            sessions=opts.sessions,
            size=opts.size,
            reuse=False,
        )
        result.accepted += run_smtp_source(warm, opts.warmup).messages
    if opts.profile is not None:
        result.accepted += profile_run(target.name, pid, argv, messages, opts).messages
    for n in range(1, opts.repeats + 1):
        cpu = cpu_seconds(pid)
        run = run_smtp_source(argv, messages)
        cpu = cpu_seconds(pid) - cpu
        result.throughput.append(run)
        result.cpu_ms.append(cpu * 1000 / run.messages)
        result.cores.append(cpu / run.seconds)
        result.accepted += run.messages
        log(
            f"{result.label}: throughput run {n}: {run.messages} in {run.seconds:.2f} s = "
            f"{run.rate:.0f}/s, server CPU {cpu * 1000 / run.messages:.1f} ms/msg"
        )
        if mailhook and opts.drain_between:
            mailhook.watch_workers(opts.drain_timeout)
        lat = measure_latency(
            target.port, messages=opts.latency_messages, connections=opts.latency_connections, size=opts.size
        )
        result.accepted += lat.accepted
        result.p50_ms.append(lat.p50)
        result.p99_ms.append(lat.p99)
        if lat.refused:
            log(f"{result.label}: {len(lat.refused)} refused, e.g. {lat.refused[0]!r}")
        log(f"{result.label}: latency run {n}: p50 {lat.p50:.1f} ms, p99 {lat.p99:.1f} ms")
        if mailhook and opts.drain_between:
            mailhook.watch_workers(opts.drain_timeout)
    if mailhook is not None:
        result.jobs = mailhook.spool_counts()
        total = sum(result.jobs.values())
        log(f"{result.label}: accepted {result.accepted}, spool jobs {total}: {result.jobs}")
        if opts.drain_timeout > 0:
            result.processing = mailhook.watch_workers(opts.drain_timeout)
            p = result.processing
            log(
                f"{result.label}: workers finished {p.finished} jobs in {p.seconds:.1f} s "
                f"({p.rate:.1f}/s, {p.cpu_ms_per_job:.0f} ms CPU/job), {p.backlog} left"
            )


def profile_run(name: str, pid: int, argv: list[str], messages: int, opts: Options) -> ThroughputRun:
    """One extra throughput run (not counted) under ``py-spy record`` of the server process."""
    assert opts.profile is not None
    opts.profile.mkdir(parents=True, exist_ok=True)
    out = opts.profile / f"{name}.txt"
    spy_argv = [opts.py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100"]
    spy = subprocess.Popen(
        [*spy_argv, "--threads", "--idle", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let py-spy attach
    run = run_smtp_source(argv, messages)
    spy.send_signal(signal.SIGINT)  # py-spy writes the profile and exits
    _, err = spy.communicate(timeout=60)
    note = err.decode(errors="replace").strip()[-200:]
    log(f"{name}: profiled run {run.rate:.0f}/s -> {out} {note}")
    return run


# --- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One target to measure: its label and how to start it."""

    label: str
    start: Callable[[ExitStack, Path], SinkServer | MailhookServer]
    skipped: str = ""


def plans(opts: Options) -> list[Plan]:
    """Sink, mailhook on SQLite, mailhook on PostgreSQL (when possible and wanted)."""

    def sink(stack: ExitStack, tmp: Path) -> SinkServer | MailhookServer:
        return stack.enter_context(SinkServer(tmp))

    def sqlite(stack: ExitStack, tmp: Path) -> SinkServer | MailhookServer:
        return stack.enter_context(MailhookServer("mailhook-sqlite", tmp / "sqlite"))

    def postgresql(stack: ExitStack, tmp: Path) -> SinkServer | MailhookServer:
        url, _ = stack.enter_context(postgres_server(tmp, durable=not opts.pg_fast))
        return stack.enter_context(MailhookServer("mailhook-postgresql", tmp / "pg-data", url))

    result = [
        Plan("bare aiosmtpd LMTP sink", sink),
        Plan("mailhook, SQLite", sqlite),
    ]
    if opts.pg != "off":
        reason = postgres_unavailable()
        if reason and opts.pg == "on":
            raise SystemExit(f"--pg: PostgreSQL cannot run here: {reason}")
        label = "mailhook, PostgreSQL" + (" (fsync=off, not durable)" if opts.pg_fast else "")
        result.append(Plan(label, postgresql, skipped=reason or ""))
    return result


def run_all(opts: Options, smtp_source: str, tmp: Path) -> list[TargetResult]:
    """Start each target in turn, measure it, stop it."""
    results = []
    for plan in plans(opts):
        result = TargetResult(plan.label, skipped=plan.skipped)
        results.append(result)
        if plan.skipped:
            log(f"{plan.label}: skipped ({plan.skipped})")
            continue
        log(f"{plan.label}: starting")
        with ExitStack() as stack:
            target = plan.start(stack, tmp)
            measure_target(target, result, opts, smtp_source)
        log(f"{plan.label}: stopped")
    return results


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Options:
    """Options from the command line (``[]``: the defaults)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--messages", "-n", type=int, default=400, help="messages per throughput run against mailhook")
    add("--sink-messages", type=int, default=1500, help="messages per throughput run against the sink")
    add("--warmup", type=int, default=50, help="unmeasured messages sent to each server first (default 50)")
    add("--sessions", "-s", type=int, default=8, help="parallel smtp-source sessions (default 8)")
    add("--size", type=int, default=4096, help="message body bytes (default 4096)")
    add("--repeats", "-r", type=int, default=3, help="runs per measurement; medians are reported")
    add("--latency-messages", type=int, default=200, help="messages per latency run (default 200)")
    add("--latency-connections", type=int, default=4, help="concurrent latency connections (default 4)")
    add(
        "--reuse-connections",
        action="store_true",
        help="smtp-source -d: keep each session's connection (as Postfix's LMTP cache does)",
    )
    pg = parser.add_mutually_exclusive_group()
    pg.add_argument("--pg", dest="pg", action="store_const", const="on", help="require the PostgreSQL run")
    pg.add_argument("--no-pg", dest="pg", action="store_const", const="off", help="skip PostgreSQL")
    add("--pg-fast", action="store_true", help="keep the test harness's fsync=off (not durable)")
    add(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds to watch mailhook's workers without load after the runs (0: don't)",
    )
    add(
        "--drain-between",
        action="store_true",
        help="also wait (up to --drain-timeout) for an empty queue before every measurement",
    )
    add("--profile", type=Path, metavar="DIR", help="record one extra, uncounted run per server with py-spy")
    add("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy binary for --profile")
    add("--write", type=Path, metavar="FILE", help="rewrite the ingest section of FILE (docs/benchmarks.md)")
    add("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    parser.set_defaults(pg="auto")
    ns = parser.parse_args(argv)
    counts = ("messages", "sink_messages", "sessions", "size", "repeats")
    for name in (*counts, "latency_messages", "latency_connections"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if ns.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return Options(
        messages=ns.messages,
        sink_messages=ns.sink_messages,
        warmup=ns.warmup,
        sessions=ns.sessions,
        size=ns.size,
        repeats=ns.repeats,
        latency_messages=ns.latency_messages,
        latency_connections=ns.latency_connections,
        reuse=ns.reuse_connections,
        pg=ns.pg,
        pg_fast=ns.pg_fast,
        drain_timeout=ns.drain_timeout,
        drain_between=ns.drain_between,
        profile=ns.profile,
        py_spy=ns.py_spy,
        write=ns.write,
        keep=ns.keep,
    )


@contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    """A temporary directory for logs and databases (kept with --keep)."""
    path = Path(tempfile.mkdtemp(prefix="mailhook-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    smtp_source = find_smtp_source()
    if smtp_source is None:
        print("smtp-source not found: install Postfix (Debian: apt-get install postfix)", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"warning: load average {load:.2f}: other work on this machine will skew the numbers")
    started = time.monotonic()
    with work_dir(opts.keep) as tmp:
        info = machine_info(tmp)
        results = run_all(opts, smtp_source, tmp)
    info["load average (1 min) at start / end"] = f"{load:.2f} / {os.getloadavg()[0]:.2f}"
    text = section(results, opts, parse_args([]), Path(smtp_source).name, info)
    print(text)
    if opts.write:
        write_section(opts.write, text)
        log(f"wrote the ingest section of {opts.write}")
    log(f"done in {time.monotonic() - started:.0f} s")
    mismatch = any(r.jobs is not None and sum(r.jobs.values()) != r.accepted for r in results)
    return 1 if mismatch else 0


def write_section(path: Path, text: str) -> None:
    """Replace the ingest section of ``path`` (or append it; create the file with an intro)."""
    current = path.read_text() if path.exists() else DOC_INTRO
    block = f"{SECTION_BEGIN}\n{text.rstrip()}\n{SECTION_END}\n"
    if SECTION_BEGIN in current and SECTION_END in current:
        head, rest = current.split(SECTION_BEGIN, 1)
        _, tail = rest.split(SECTION_END, 1)
        updated = head + block + tail.lstrip("\n")
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated)


if __name__ == "__main__":
    sys.exit(main())
