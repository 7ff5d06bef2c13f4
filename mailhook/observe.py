"""In-process Prometheus metrics: model calls, pipeline outcomes, guard holds, job durations.

``/metrics`` (``mailhook/api/metrics.py``) renders these next to the counts it reads from the
database. Everything here is per process (per node): latency, tokens and errors are only known
where the call ran. Labels are small fixed sets (actions, error kinds, rule ids, severities);
never an address, a subject or any content.

The model is observed at its boundary, without touching the providers:

- :class:`ObservedDecider` wraps any :class:`~mailhook.agent.decision.Decider` (timing, outcome,
  decisions by action);
- :class:`MeteredTransport` is an httpx transport for a provider's HTTP client: it sees every
  attempt (the providers retry internally), so it classifies failures (timeout, connection,
  HTTP status, invalid JSON) and reads the ``usage`` block of successful answers (OpenAI
  ``prompt_tokens``/``completion_tokens``, Anthropic ``input_tokens``/``output_tokens``).

The two meet through a context variable: the decider opens an :class:`LlmCall` record, the
transport fills it in the same task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from mailhook.agent.decision import Decider, Decision, DecisionRequest
from mailhook.errors import ProviderUnavailable

#: Seconds; model calls take from ~100 ms (small local model) to a minute (budget with retries).
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Seconds for one pipeline run of a job (the model call dominates).
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SEVERITY_ORDER = ("low", "medium", "high")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass
class Counter:
    """A monotonically increasing count per label set."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0) to the series with these label values."""
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        """The current value (0 when never incremented)."""
        return self.values.get(labels, 0.0)

    def render(self) -> Iterator[str]:
        """Exposition lines (format 0.0.4)."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class Histogram:
    """Cumulative buckets, sum and count per label set."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    buckets: tuple[float, ...] = JOB_BUCKETS
    series: dict[tuple[str, ...], list[float]] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        """Record one observation (seconds)."""
        # Layout: one count per bucket, then +Inf count, then the sum.
        row = self.series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                row[index] += 1
        row[-2] += 1
        row[-1] += value

    def count(self, *labels: str) -> int:
        """How many observations this label set has."""
        row = self.series.get(labels)
        return int(row[-2]) if row else 0

    def render(self) -> Iterator[str]:
        """Exposition lines (format 0.0.4)."""
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, row in sorted(self.series.items()):
            for bound, count in zip((*self.buckets, "+Inf"), row[:-1], strict=True):
                le = f'le="{bound}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {_number(count)}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(row[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {_number(row[-2])}"


class Metrics:
    """Every in-process metric of one running mailhook (one per :class:`Services`)."""

    def __init__(self) -> None:
        self.llm_seconds = Histogram(
            "mailhook_llm_request_seconds",
            "Duration of one model decision, retries included, by outcome (ok, error).",
            ("outcome",),
            LLM_BUCKETS,
        )
        self.llm_tokens = Counter(
            "mailhook_llm_tokens_total", "Model tokens as reported by the provider.", ("direction",)
        )
        self.llm_errors = Counter(
            "mailhook_llm_errors_total",
            "Failed model attempts by kind (timeout, connection, http_429, http_4xx, http_5xx, "
            "invalid_json, bad_response, unavailable, internal).",
            ("kind",),
        )
        self.llm_decisions = Counter(
            "mailhook_llm_decisions_total", "Model decisions by action.", ("action",)
        )
        self.jobs = Counter(
            "mailhook_jobs_total",
            "Pipeline runs on this node by outcome (an activity action, or retry).",
            ("outcome",),
        )
        self.job_seconds = Histogram(
            "mailhook_job_duration_seconds",
            "Duration of one pipeline run of a job on this node, by outcome.",
            ("outcome",),
            JOB_BUCKETS,
        )
        self.guard_findings = Counter(
            "mailhook_guard_findings_total",
            "Outbound guard findings on composed replies, by rule and severity.",
            ("rule", "severity"),
        )
        self.guard_holds = Counter(
            "mailhook_guard_holds_total",
            "Replies held for the owner because of guard findings, by the highest severity.",
            ("severity",),
        )

    @property
    def families(self) -> tuple[Counter | Histogram, ...]:
        """Every metric family, in exposition order."""
        return (
            self.llm_seconds,
            self.llm_tokens,
            self.llm_errors,
            self.llm_decisions,
            self.jobs,
            self.job_seconds,
            self.guard_findings,
            self.guard_holds,
        )

    def render(self) -> list[str]:
        """All families as exposition lines."""
        return [line for family in self.families for line in family.render()]

    def job_finished(self, outcome: str, seconds: float, findings: Sequence[tuple[str, str]]) -> None:
        """One pipeline run ended with ``outcome``; ``findings`` are (rule, severity) pairs."""
        self.jobs.inc(outcome)
        self.job_seconds.observe(seconds, outcome)
        for rule, severity in findings:
            self.guard_findings.inc(rule, severity)
        severities = [s for _, s in findings if s in SEVERITY_ORDER]
        if outcome == "queued" and "high" in severities:
            # Oversight holds a reply on any high-severity finding (pipeline/steps/oversight.py).
            self.guard_holds.inc(max(severities, key=SEVERITY_ORDER.index))

    def job_failed(self, seconds: float) -> None:
        """One pipeline run raised: the worker retries or dead-letters the job."""
        self.jobs.inc("retry")
        self.job_seconds.observe(seconds, "retry")


# --- the model boundary ----------------------------------------------------------------------


@dataclass
class LlmCall:
    """What the transport saw during one decision (all attempts)."""

    tokens_in: int = 0
    tokens_out: int = 0
    errors: list[str] = field(default_factory=list)


_CURRENT_CALL: ContextVar[LlmCall | None] = ContextVar("mailhook_llm_call", default=None)


class ObservedDecider:
    """A decider that records latency, outcome, errors and tokens of the decider it wraps."""

    def __init__(self, inner: Decider, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def decide(self, request: DecisionRequest) -> Decision:
        """Delegate; record what happened."""
        call = LlmCall()
        token = _CURRENT_CALL.set(call)
        started = time.monotonic()
        try:
            decision = await self.inner.decide(request)
        except Exception as exc:
            self._record(call, "error", time.monotonic() - started)
            if not call.errors:  # the transport saw no failed attempt: classify the exception
                self._metrics.llm_errors.inc(_error_kind(exc))
            raise
        finally:
            _CURRENT_CALL.reset(token)
        self._record(call, "ok", time.monotonic() - started)
        self._metrics.llm_decisions.inc(decision.action.value)
        return decision

    def _record(self, call: LlmCall, outcome: str, seconds: float) -> None:
        self._metrics.llm_seconds.observe(seconds, outcome)
        for kind in call.errors:
            self._metrics.llm_errors.inc(kind)
        if call.tokens_in:
            self._metrics.llm_tokens.inc("in", amount=call.tokens_in)
        if call.tokens_out:
            self._metrics.llm_tokens.inc("out", amount=call.tokens_out)

    async def aclose(self) -> None:
        """Close the wrapped provider's connections."""
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "internal"


class MeteredTransport(httpx.AsyncBaseTransport):
    """An httpx transport that reports each model HTTP attempt into the current :class:`LlmCall`."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send; classify the attempt; read ``usage`` from a successful answer."""
        call = _CURRENT_CALL.get()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            _note(call, "timeout")
            raise
        except httpx.TransportError:
            _note(call, "connection")
            raise
        if call is None:
            return response
        if response.status_code != 200:
            _note(call, _status_kind(response.status_code))
            return response
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        # Rebuilt from the raw bytes so content-encoding is decoded exactly once, by httpx.
        rebuilt = httpx.Response(
            response.status_code,
            headers=response.headers,
            content=raw,
            extensions=response.extensions,
            request=request,
        )
        _read_usage(call, rebuilt.content)
        return rebuilt

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def metered_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for a model provider whose attempts are metered."""
    return httpx.AsyncClient(timeout=timeout, transport=MeteredTransport())


def _note(call: LlmCall | None, kind: str) -> None:
    if call is not None:
        call.errors.append(kind)


def _status_kind(status: int) -> str:
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


def _read_usage(call: LlmCall, body: bytes) -> None:
    try:
        payload: Any = json.loads(body)
    except ValueError:
        call.errors.append("invalid_json")
        return
    if not isinstance(payload, dict) or not ("choices" in payload or "content" in payload):
        call.errors.append("bad_response")
        return
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return
    call.tokens_in += _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    call.tokens_out += _int(usage.get("completion_tokens", usage.get("output_tokens")))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
