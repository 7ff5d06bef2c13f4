"""Arrival-to-reply overhead: what mailhook adds between a message's LMTP ``250`` and its reply
leaving, with the model's own time taken out.

The real ``mailhook serve`` (SQLite; ``--pg`` adds a durable PostgreSQL) with one mailbox in
autonomous mode, an OpenAI-compatible fake model (``tests/fakes/llm.py``) that answers a valid
``reply`` decision after a fixed ``--model-latency``, and ``outbound.mode = smtp`` to a relay sink
(``tests/fakes/relay.py``) in this process. For each burst size (``--sizes``, default 1, 50 and
500 messages sent at once over ``--connections`` LMTP connections, one sender per message so the
per-sender rate limit never applies) it times every message from its ``250`` (read by our LMTP
client) to its reply's arrival at the relay (matched by ``In-Reply-To``), both on this process's
clock, and subtracts the model's latency times the model calls the message took (counted at the
fake). Reported: p50, p99 and max of that overhead, the drain time (first ``250`` to last reply)
and mailhook's CPU time per message; medians over ``--repeats`` runs.

This is a benchmark, not a test: nothing here fails on a slow number.

    .venv/bin/python bench/arrival.py                       # ~3 minutes, prints the table
    .venv/bin/python bench/arrival.py --write docs/benchmarks.md
    .venv/bin/python bench/arrival.py --sizes 1,20 -r 1     # a quick look
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(REPO))

from bench.ingest import log  # noqa: E402
from bench.lmtp_load import Latencies, make_message, send_concurrently  # noqa: E402
from bench.report import Section, parsed, publish, script_parser  # noqa: E402
from bench.servers import MailhookServer, cpu_seconds, postgres_server, postgres_unavailable  # noqa: E402
from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.fakes.relay import RelaySink  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402


@dataclass(frozen=True)
class Options:
    """What to measure: the burst sizes, the fake model, the LMTP load (see parse_args)."""

    sizes: tuple[int, ...]
    repeats: int
    model_latency: float  # seconds the fake model waits before answering
    connections: int
    workers: int
    size: int
    warmup: int
    pg: bool
    timeout: float
    write: Path | None
    keep: bool
    argv: list[str]


@dataclass
class TimedRelay(RelaySink):
    """The relay sink, noting when each reply arrived, by the Message-ID it answers."""

    arrived: dict[str, float] = field(default_factory=dict)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.perf_counter()
        answer = await super().handle_DATA(server, session, envelope)
        parent = str(self.messages[-1][2].get("In-Reply-To", "")).strip()
        self.arrived.setdefault(parent, at)
        return answer


@dataclass(frozen=True)
class Run(Latencies):
    """One burst: per-message overheads (ms), drain seconds, model calls and CPU per message."""

    latencies_ms: list[float]  # arrival to reply, minus the model's time
    drain: float
    calls_per_message: float
    cpu_ms: float


@dataclass
class Result:
    """Every run of every burst size, per database."""

    runs: dict[str, dict[int, list[Run]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


# --- measuring -----------------------------------------------------------------------------------


def server_env(opts: Options, model: FakeLLM, relay_port: int) -> dict[str, str]:
    """mailhook's settings for this bench: the fake model, the relay sink, enough credits."""
    return {
        "MAILHOOK_LLM_PROVIDER": "openai",
        "MAILHOOK_LLM_BASE_URL": model.base_url,
        "MAILHOOK_OUTBOUND_MODE": "smtp",
        "MAILHOOK_OUTBOUND_RELAY_HOST": "127.0.0.1",
        "MAILHOOK_OUTBOUND_RELAY_PORT": str(relay_port),
        "MAILHOOK_SPOOL_WORKERS": str(opts.workers),
        "MAILHOOK_BILLING_FREE_CREDITS": "1000000",  # quota is off without Stripe; this is belt and braces
    }


def burst(server: MailhookServer, relay: TimedRelay, model: FakeLLM, count: int, opts: Options) -> Run:
    """Send ``count`` messages at once; wait for every reply and an idle spool."""
    tag = uuid.uuid4().hex[:10]
    tokens = [f"{tag}.{n}" for n in range(count)]
    senders = [f"s{tag}n{n}@example.org" for n in range(count)]  # one sender each: no rate limit
    outgoing = [(s, make_message(t, opts.size, s)) for t, s in zip(tokens, senders, strict=True)]
    assert server.pid is not None
    calls, cpu = len(model.requests), cpu_seconds(server.pid)
    acks, _ = send_concurrently(server.port, outgoing, opts.connections)
    refused = [a.reply for a in acks if not a.reply.startswith("250")]
    if refused:
        raise RuntimeError(f"{len(refused)} messages refused, e.g. {refused[0]!r}")
    parents = [f"<{t}@bench.example.org>" for t in tokens]
    wait_for_replies(server, relay, parents, opts.timeout)
    calls_per_message = (len(model.requests) - calls) / count
    model_ms = 1000 * opts.model_latency * calls_per_message
    replied = [relay.arrived[p] for p in parents]
    overheads = [1000 * (r - a.at) - model_ms for r, a in zip(replied, acks, strict=True)]
    cpu_ms = 1000 * (cpu_seconds(server.pid) - cpu) / count
    return Run(overheads, max(replied) - min(a.at for a in acks), calls_per_message, cpu_ms)


def wait_for_replies(server: MailhookServer, relay: TimedRelay, parents: list[str], timeout: float) -> None:
    """Until every message has its reply and the workers have finished their jobs.

    The relay is watched in this process; mailhook's health endpoint only about once a second
    (to notice jobs that ended without a reply), so the watching costs mailhook next to nothing.
    """
    deadline = time.monotonic() + timeout
    checked = time.monotonic()
    while any(p not in relay.arrived for p in parents):
        if time.monotonic() > deadline:
            raise RuntimeError(f"replies still missing after {timeout:g} s; spool {server.spool_counts()}")
        if time.monotonic() - checked > 1.0:
            if not server.open_jobs():
                time.sleep(2.0)  # every job ended: the last replies may still be on their way
                if any(p not in relay.arrived for p in parents):
                    raise RuntimeError(f"messages without a reply: see {server.log_file} (--keep)")
            checked = time.monotonic()
        time.sleep(0.01)
    while server.open_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)  # the after-steps (activity, credits) of the last jobs


def measure_database(
    label: str, server: MailhookServer, relay: TimedRelay, model: FakeLLM, opts: Options
) -> dict[int, list[Run]]:
    """Warm up, then every burst size ``opts.repeats`` times."""
    if opts.warmup:
        burst(server, relay, model, opts.warmup, opts)
    runs: dict[int, list[Run]] = {}
    for count in opts.sizes:
        for n in range(1, opts.repeats + 1):
            run = burst(server, relay, model, count, opts)
            runs.setdefault(count, []).append(run)
            log(
                f"{label}: {count} at once, run {n}: overhead p50 {run.p50:.0f} ms, p99 {run.p99:.0f} ms, "
                f"max {run.worst:.0f} ms; drained in {run.drain:.1f} s; "
                f"{run.calls_per_message:g} model calls/message; {run.cpu_ms:.0f} ms CPU/message"
            )
    return runs


def measure(opts: Options, tmp: Path) -> Result:
    """SQLite (and PostgreSQL with --pg), each with its own model fake and relay sink."""
    result = Result()
    databases = ["SQLite"]
    if opts.pg:
        reason = postgres_unavailable()
        if reason:
            result.skipped["PostgreSQL"] = reason
        else:
            databases.append("PostgreSQL")
    for database in databases:
        with ExitStack() as stack:
            model = FakeLLM(delay=opts.model_latency).start()
            stack.callback(model.stop)
            relay = TimedRelay(free_port())
            relay.start()
            stack.callback(relay.stop)
            url = ""
            if database == "PostgreSQL":
                url, _ = stack.enter_context(postgres_server(tmp))
            env = server_env(opts, model, relay.port)
            server = stack.enter_context(MailhookServer(database, tmp / database, url, env=env))
            log(f"{database}: mailhook started (pid {server.pid})")
            result.runs[database] = measure_database(database, server, relay, model, opts)
    return result


# --- report --------------------------------------------------------------------------------------


def _median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def summary_table(result: Result) -> str:
    """One row per database and burst size: medians over the runs."""
    rows = [
        "| database | messages at once | model calls / message | overhead p50 (ms) | p99 (ms) | max (ms) "
        "| drain (s) | replies/s | mailhook CPU (ms/message) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for database, by_size in result.runs.items():
        for count, runs in by_size.items():
            drain = _median(runs, lambda r: r.drain)
            rate = f"{count / drain:.1f}" if count > 1 else "-"  # one message has no rate
            rows.append(
                f"| {database} | {count} | {_median(runs, lambda r: r.calls_per_message):g} "
                f"| {_median(runs, lambda r: r.p50):.0f} | {_median(runs, lambda r: r.p99):.0f} "
                f"| {_median(runs, lambda r: r.worst):.0f} | {drain:.1f} "
                f"| {rate} | {_median(runs, lambda r: r.cpu_ms):.0f} |"
            )
    rows += [f"| {database} | skipped: {why} | | | | | | | |" for database, why in result.skipped.items()]
    return "\n".join(rows)


def runs_table(result: Result) -> str:
    """Every run, so the spread behind each median is visible."""
    rows = [
        "| database | messages at once | overhead p50 / p99 / max (ms), drain (s), per run |",
        "|---|---:|---|",
    ]
    for database, by_size in result.runs.items():
        for count, runs in by_size.items():
            each = "; ".join(f"{r.p50:.0f} / {r.p99:.0f} / {r.worst:.0f}, {r.drain:.1f} s" for r in runs)
            rows.append(f"| {database} | {count} | {each} |")
    return "\n".join(rows)


def render(result: Result, opts: Options) -> Section:
    """The docs section's tables and notes."""
    ceiling = opts.workers / opts.model_latency if opts.model_latency > 0 else 0
    notes = [
        f"Overhead: from the LMTP `250` (read by the client) to the reply's arrival at the relay "
        f"sink, minus the fake model's fixed {1000 * opts.model_latency:.0f} ms times the model calls "
        "the message took. Both ends are read on the benchmark process's clock. Drain: the first "
        "`250` of the burst to the last reply; replies/s is the burst size over it.",
        f"mailhook: the real `mailhook serve`, one mailbox in autonomous mode, "
        f"`spool.workers = {opts.workers}`, `outbound.mode = smtp` to an aiosmtpd relay sink in the "
        "benchmark process; the model is `tests/fakes/llm.py` (OpenAI-compatible, always a valid "
        f"`reply` decision). With {opts.workers} workers and a {1000 * opts.model_latency:.0f} ms "
        f"model, no more than {ceiling:.0f} replies/s can leave however little mailhook adds: past "
        "that, a burst's overhead is mostly waiting for a worker.",
        f"The messages of a burst go over {opts.connections} concurrent LMTP connections "
        f"(`bench/lmtp_load.py`), {opts.size} bytes of body each, one sender per message (the "
        "per-sender rate limit never applies). mailhook CPU: user + system time of the `mailhook "
        "serve` process per message.",
        f"Medians over {opts.repeats} runs, after {opts.warmup} unmeasured messages.",
    ]
    blocks = [summary_table(result), "Every run:", runs_table(result)]
    return Section("Arrival to reply", blocks, notes)


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> Options:
    """Options from the command line."""
    parser = script_parser(__doc__, repeats=3)
    add = parser.add_argument
    add(
        "--sizes",
        type=sizes,
        default="1,50,500",
        help="messages sent at once, comma-separated (default 1,50,500)",
    )
    add("--model-latency", type=float, default=0.2, help="seconds the fake model takes (default 0.2)")
    add("--connections", type=int, default=20, help="concurrent LMTP connections (default 20, as Postfix)")
    add("--workers", type=int, default=4, help="spool.workers of mailhook (default 4, its default)")
    add("--size", type=int, default=1024, help="message body bytes (default 1024)")
    add("--warmup", type=int, default=5, help="unmeasured messages first (default 5)")
    add("--pg", action="store_true", help="also measure mailhook on a private, durable PostgreSQL")
    add("--timeout", type=float, default=300.0, help="seconds to wait for one burst's replies (default 300)")
    opts = parsed(Options, parser, argv)
    if min(opts.repeats, opts.connections, opts.workers) < 1 or opts.warmup < 0 or opts.model_latency < 0:
        parser.error("--repeats, --connections and --workers must be at least 1; the others 0 or more")
    return opts


def sizes(text: str) -> tuple[int, ...]:
    """``--sizes``: comma-separated burst sizes, each at least 1."""
    values = tuple(int(part) for part in text.split(","))
    if min(values) < 1:
        raise ValueError(text)
    return values


if __name__ == "__main__":
    publish(Path(__file__).name, parse_args(sys.argv[1:]), measure, render)
