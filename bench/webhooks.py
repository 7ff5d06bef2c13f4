"""Webhook deliveries: how many signed requests per second one node sends, and how long an event
waits between the activity log and the receiver.

The real ``mailhook serve`` (SQLite) with ``--endpoints`` webhook endpoints registered through the
API (``POST /api/v1/webhooks``, subscribed to ``escalation``) that all point at the test receiver
(``tests/fakes/webhook_receiver.py``, in a thread of this process). ``http://127.0.0.1`` is let
through by the operator settings the webhook tests use (``webhooks.allow_http`` and
``webhooks.allow_hosts``); the URL policy still runs before every request.

Events are activity rows: this script writes ``escalated`` rows for the mailbox with mailhook's
own models (the rows the pipeline's record step writes), so the fan-out and the dispatcher are
measured on their own, not behind the pipeline's pace. Two loads, ``--repeats`` times each:

* burst: ``--events`` rows committed at once; deliveries per second from the commit to the last
  request received, and each delivery's latency;
* steady: ``--rate`` rows per second for ``--seconds``, one commit each; the latency.

Latency is from the row's ``created_at`` (the payload's) to the request's arrival, both on this
machine's wall clock. This is a benchmark, not a test: nothing here fails on a slow number.

    .venv/bin/python bench/webhooks.py                       # ~2 minutes, prints the table
    .venv/bin/python bench/webhooks.py --write docs/benchmarks.md
    .venv/bin/python bench/webhooks.py --events 300 --seconds 3 -r 1   # a quick look
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `bench`, `mailhook` and `tests` importable
    sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from bench.ingest import log  # noqa: E402
from bench.lmtp_load import RECIPIENT, Latencies  # noqa: E402
from bench.report import Section, parsed, publish, script_parser  # noqa: E402
from bench.servers import MailhookServer, cpu_seconds  # noqa: E402
from mailhook.settings import load_settings  # noqa: E402
from mailhook.store.activity import ActivityAction, ActivityLog  # noqa: E402
from mailhook.store.db import create_engine, session_factory  # noqa: E402
from mailhook.store.models import Activity, Mailbox  # noqa: E402
from tests.fakes.webhook_receiver import WebhookReceiver  # noqa: E402


@dataclass(frozen=True)
class Options:
    """The two loads and the endpoints (see parse_args)."""

    events: int
    rate: float
    seconds: float
    endpoints: int
    poll_seconds: float
    repeats: int
    timeout: float
    write: Path | None
    keep: bool
    argv: list[str]


@dataclass
class TimedReceiver(WebhookReceiver):
    """The test receiver, noting when each request was answered (wall clock, like the payloads)."""

    arrived: list[float] = field(default_factory=list)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await super()._handle(reader, writer)
        now = time.time()
        self.arrived.extend([now] * (len(self.received) - len(self.arrived)))


@contextmanager
def receiver_thread() -> Iterator[TimedReceiver]:
    """The receiver on an event loop of its own, in a daemon thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-receiver", daemon=True)
    thread.start()
    receiver = TimedReceiver()
    asyncio.run_coroutine_threadsafe(receiver.__aenter__(), loop).result(timeout=10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.__aexit__(None, None, None), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass(frozen=True)
class Run(Latencies):
    """One load: every delivery's latency (ms), and for a burst the delivery rate."""

    latencies_ms: list[float]
    per_second: float  # deliveries per second from the first commit to the last arrival
    cpu_ms: float  # mailhook's CPU time per delivery


@dataclass
class Result:
    """Every run of both loads."""

    burst: list[Run] = field(default_factory=list)
    steady: list[Run] = field(default_factory=list)


# --- measuring -----------------------------------------------------------------------------------


class Events:
    """Writes ``escalated`` activity rows for the bench mailbox, as the record step does."""

    def __init__(self, server: MailhookServer) -> None:
        self._engine = create_engine(load_settings(server.env).database_url)
        self._sessions = session_factory(self._engine)
        self._log = ActivityLog(self._sessions)
        self.mailbox_id = 0

    async def open(self) -> None:
        async with self._sessions() as session:
            found = await session.scalar(select(Mailbox.id).where(Mailbox.address == RECIPIENT))
        assert found is not None, "the bench mailbox is missing"
        self.mailbox_id = found

    async def close(self) -> None:
        await self._engine.dispose()

    async def burst(self, count: int) -> float:
        """``count`` rows in one transaction; the wall-clock time of the commit's start."""
        rows = [
            Activity(mailbox_id=self.mailbox_id, action=ActivityAction.ESCALATED.value, reason="benchmark")
            for _ in range(count)
        ]
        started = time.time()
        async with self._sessions() as session, session.begin():
            session.add_all(rows)
        return started

    async def steady(self, rate: float, seconds: float) -> tuple[int, float]:
        """One row (one commit) every ``1 / rate`` seconds; how many, and the first one's time."""
        count = max(1, round(rate * seconds))
        started = time.time()
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.time()))
            await self._log.record(self.mailbox_id, ActivityAction.ESCALATED, reason="benchmark")
        return count, started


def created_at(payload: dict[str, object]) -> float:
    """The event's ``created_at`` as Unix seconds (UTC)."""
    moment = datetime.fromisoformat(str(payload["created_at"]).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def collect(receiver: TimedReceiver, first: int, expected: int, timeout: float) -> list[tuple[float, float]]:
    """Wait for ``expected`` requests past index ``first``: (event created_at, arrival) each."""
    deadline = time.monotonic() + timeout
    while len(receiver.arrived) < first + expected:
        if time.monotonic() > deadline:
            got = len(receiver.arrived) - first
            raise RuntimeError(f"only {got} of {expected} webhook requests arrived in {timeout:g} s")
        time.sleep(0.01)
    pairs = zip(receiver.received[first:], receiver.arrived[first:], strict=False)
    return [(created_at(r.json), at) for r, at in pairs][:expected]


def one_load(
    server: MailhookServer, receiver: TimedReceiver, events: Events, opts: Options, *, burst: bool
) -> Run:
    """One burst or one steady stream; every delivery of it received."""
    assert server.pid is not None

    async def generate() -> tuple[int, float]:
        await events.open()
        try:
            if burst:
                return opts.events, await events.burst(opts.events)
            return await events.steady(opts.rate, opts.seconds)
        finally:
            await events.close()

    first, cpu = len(receiver.arrived), cpu_seconds(server.pid)
    count, started = asyncio.run(generate())
    got = collect(receiver, first, count * opts.endpoints, opts.timeout)
    cpu = cpu_seconds(server.pid) - cpu
    latencies = [1000 * (at - made) for made, at in got]
    last = max(at for _, at in got)
    return Run(latencies, len(got) / (last - started), 1000 * cpu / len(got))


def measure(opts: Options, tmp: Path) -> Result:
    """Start the node and the receiver, register the endpoints, then both loads."""
    result = Result()
    env = {
        "MAILHOOK_WEBHOOKS_ALLOW_HTTP": "true",
        "MAILHOOK_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
        "MAILHOOK_WEBHOOKS_POLL_SECONDS": f"{opts.poll_seconds:g}",
        "MAILHOOK_WEBHOOKS_MAX_ENDPOINTS_PER_USER": str(max(10, opts.endpoints)),
    }
    with ExitStack() as stack:
        receiver = stack.enter_context(receiver_thread())
        server = stack.enter_context(MailhookServer("webhooks", tmp / "data", env=env))
        token = server.login()
        for _ in range(opts.endpoints):
            server.api("POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["escalation"]}, token)
        log(f"mailhook started (pid {server.pid}), {opts.endpoints} endpoint(s) at {receiver.url}")
        for n in range(1, opts.repeats + 1):
            for burst, runs in ((True, result.burst), (False, result.steady)):
                run = one_load(server, receiver, Events(server), opts, burst=burst)
                runs.append(run)
                log(
                    f"{'burst' if burst else 'steady'} run {n}: {len(run.latencies_ms)} deliveries, "
                    f"{run.per_second:.0f}/s; latency p50 {run.p50:.0f} ms, p99 {run.p99:.0f} ms, "
                    f"max {run.worst:.0f} ms; {run.cpu_ms:.1f} ms CPU/delivery"
                )
    return result


# --- report --------------------------------------------------------------------------------------


def _row(label: str, runs: list[Run], rate: str) -> str:
    def median(value: list[float]) -> float:
        return statistics.median(value)

    return (
        f"| {label} | {len(runs[0].latencies_ms)} | {rate} "
        f"| {median([r.p50 for r in runs]):.0f} | {median([r.p99 for r in runs]):.0f} "
        f"| {median([r.worst for r in runs]):.0f} | {median([r.cpu_ms for r in runs]):.1f} |"
    )


def render(result: Result, opts: Options) -> Section:
    """The docs section's tables and notes."""
    burst_rate = statistics.median(r.per_second for r in result.burst)
    table = "\n".join(
        [
            "| load | deliveries per run | requests/s | latency p50 (ms) | p99 (ms) | max (ms) "
            "| mailhook CPU (ms/delivery) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            _row(f"burst: {opts.events} events at once", result.burst, f"{burst_rate:.0f}"),
            _row(f"steady: {opts.rate:g} events/s for {opts.seconds:g} s", result.steady, "-"),
        ]
    )
    every = "\n".join(
        [
            "| load | requests/s; latency p50 / p99 / max (ms), per run |",
            "|---|---|",
            "| burst | "
            + "; ".join(
                f"{r.per_second:.0f}; {r.p50:.0f} / {r.p99:.0f} / {r.worst:.0f}" for r in result.burst
            )
            + " |",
            "| steady | "
            + "; ".join(f"{r.p50:.0f} / {r.p99:.0f} / {r.worst:.0f}" for r in result.steady)
            + " |",
        ]
    )
    endpoints = "one endpoint" if opts.endpoints == 1 else f"{opts.endpoints} endpoints"
    notes = [
        f"The real `mailhook serve` (SQLite, no model), {endpoints} registered through the API "
        "for `escalation`, pointing at the test receiver "
        "(`tests/fakes/webhook_receiver.py`) on 127.0.0.1, which answers `200` and keeps the "
        "connection open (mailhook reuses it). Each event is one signed `POST` per endpoint.",
        "Events: `escalated` rows written to the activity log by the benchmark with mailhook's own "
        "models, so the fan-out and dispatcher run at their own pace, not the pipeline's. Burst: "
        "all rows in one commit; requests/s is the deliveries over the time from that commit to "
        "the last arrival. Steady: one commit per row at the given rate.",
        "Latency: from the event's `created_at` (in the payload) to the request's arrival at the "
        f"receiver. `webhooks.poll_seconds = {opts.poll_seconds:g}`: the loop reads the activity log "
        "that often, then sends what is due.",
        f"Medians over {opts.repeats} runs of each load on one node. mailhook CPU: user + system "
        "time of the `mailhook serve` process per delivery.",
    ]
    return Section("Webhook deliveries", [table, "Every run:", every], notes)


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> Options:
    """Options from the command line."""
    parser = script_parser(__doc__, repeats=3)
    add = parser.add_argument
    add("--events", "-n", type=int, default=1000, help="events of a burst (default 1000)")
    add("--rate", type=float, default=5.0, help="events per second of the steady load (default 5)")
    add("--seconds", type=float, default=20.0, help="seconds of the steady load (default 20)")
    add("--endpoints", type=int, default=1, help="endpoints registered; each gets every event (default 1)")
    add(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="webhooks.poll_seconds (default 1, mailhook's default)",
    )
    add("--timeout", type=float, default=300.0, help="seconds to wait for one load's requests (default 300)")
    opts = parsed(Options, parser, argv)
    if (
        min(opts.events, opts.endpoints, opts.repeats) < 1
        or min(opts.rate, opts.seconds, opts.poll_seconds) <= 0
    ):
        parser.error(
            "--events, --endpoints and --repeats must be at least 1; --rate, --seconds, --poll-seconds > 0"
        )
    return opts


if __name__ == "__main__":
    publish(Path(__file__).name, parse_args(sys.argv[1:]), measure, render)
