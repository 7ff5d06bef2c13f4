"""In-process Prometheus metrics: model calls, pipeline outcomes, guard holds, job durations.

``/metrics`` (``mailhook/api/metrics.py``) renders these next to the counts it reads from the
database. Everything here is per process (per node): latency, tokens and errors are only known
where the call ran. Labels are small fixed sets (actions, error kinds, providers, purposes, rule
ids, severities); never an address, a subject or any content.

Every model call goes through one metered path, whatever asks for it (the decision, the document
pick, a persona test) and whichever provider answers:

- :class:`MeteredModel` wraps a provider (the install's and each mailbox's own, see
  ``agent.registry``): timing, outcome and decisions, labelled by provider and purpose
  (``agent.model.Purpose``);
- :class:`MeteredTransport` is the httpx transport of every provider's HTTP client (the Anthropic
  SDK's too, through :class:`MeteringTransport`): it sees every attempt (the providers retry
  internally), so it classifies failures (timeout, connection, HTTP status, invalid JSON) and
  reads the ``usage`` block of successful answers (OpenAI ``prompt_tokens``/``completion_tokens``,
  Anthropic ``input_tokens``/``output_tokens`` and its cache reads and writes).

The two meet through a context variable: the model wrapper opens an :class:`LlmCall` record, the
transport fills it in the same task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx

from mailhook.agent.decision import Decision, DecisionRequest
from mailhook.agent.model import Completion, Model, Prompt, Purpose, purpose_of
from mailhook.errors import ProviderUnavailable

T = TypeVar("T")

#: Seconds; model calls take from ~100 ms (small local model) to a minute (budget with retries).
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Seconds for one pipeline run of a job (the model call dominates).
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SEVERITY_ORDER = ("low", "medium", "high")
#: Labels every model series carries after its own: which provider answered, and why it was asked.
_MODEL_LABELS = ("provider", "purpose")


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
        """The total of the series whose first label values are ``labels`` (0 when none)."""
        return sum(value for key, value in self.values.items() if key[: len(labels)] == labels)

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
        """How many observations the series whose first label values are ``labels`` have."""
        return int(sum(row[-2] for key, row in self.series.items() if key[: len(labels)] == labels))

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
            "Duration of one model call, retries included, by outcome (ok, error), provider and "
            "purpose (decide, select, persona_test).",
            ("outcome", *_MODEL_LABELS),
            LLM_BUCKETS,
        )
        self.llm_tokens = Counter(
            "mailhook_llm_tokens_total",
            "Model tokens as reported by the provider (in, out, cache_read, cache_write).",
            ("direction", *_MODEL_LABELS),
        )
        self.llm_errors = Counter(
            "mailhook_llm_errors_total",
            "Failed model attempts by kind (timeout, connection, http_429, http_4xx, http_5xx, "
            "invalid_json, bad_response, unavailable, internal).",
            ("kind", *_MODEL_LABELS),
        )
        self.llm_decisions = Counter(
            "mailhook_llm_decisions_total", "Model decisions by action.", ("action", *_MODEL_LABELS)
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
    """What the transport saw during one model call (all attempts)."""

    tokens: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


_CURRENT_CALL: ContextVar[LlmCall | None] = ContextVar("mailhook_llm_call", default=None)


class MeteredModel:
    """A provider whose every call is timed, classified and counted under its provider and purpose."""

    def __init__(self, inner: Model, metrics: Metrics, provider: str) -> None:
        self.inner = inner
        self.provider = provider
        self._metrics = metrics

    async def decide(self, request: DecisionRequest) -> Decision:
        """The provider's decision, metered (purpose ``decide`` unless a scope says otherwise)."""
        purpose = purpose_of(Purpose.DECIDE)
        decision = await self._metered(purpose, lambda: self.inner.decide(request))
        self._metrics.llm_decisions.inc(decision.action.value, self.provider, purpose)
        return decision

    async def complete(self, prompt: Prompt) -> Completion:
        """The provider's completion, metered under the prompt's purpose."""
        return await self._metered(purpose_of(prompt.purpose), lambda: self.inner.complete(prompt))

    async def _metered(self, purpose: str, call: Callable[[], Awaitable[T]]) -> T:
        record = LlmCall()
        token = _CURRENT_CALL.set(record)
        started = time.monotonic()
        try:
            result = await call()
        except Exception as exc:
            if not record.errors:  # the transport saw no failed attempt: classify the exception
                record.errors.append(_error_kind(exc))
            self._record(record, purpose, "error", time.monotonic() - started)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        self._record(record, purpose, "ok", time.monotonic() - started)
        return result

    def _record(self, call: LlmCall, purpose: str, outcome: str, seconds: float) -> None:
        labels = (self.provider, purpose)
        self._metrics.llm_seconds.observe(seconds, outcome, *labels)
        for kind in call.errors:
            self._metrics.llm_errors.inc(kind, *labels)
        for direction, amount in call.tokens.items():
            self._metrics.llm_tokens.inc(direction, *labels, amount=amount)

    async def aclose(self) -> None:
        """Close the wrapped provider's connections."""
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "internal"


async def meter_attempt(inner: Any, request: Any, http: Any) -> Any:
    """Send ``request`` through the transport ``inner`` and report the attempt.

    ``http`` is the HTTP library of the transport: ``httpx``, or ``httpx2`` for the Anthropic SDK
    (same API), so one routine meters both. A successful answer is read whole (model answers are
    small JSON documents) and handed on rebuilt from its raw bytes, so that content-encoding is
    decoded exactly once, by the library.
    """
    call = _CURRENT_CALL.get()
    try:
        response = await inner.handle_async_request(request)
    except http.TimeoutException:
        _note(call, "timeout")
        raise
    except http.TransportError:
        _note(call, "connection")
        raise
    if call is None:
        return response
    if response.status_code != 200:
        _note(call, _status_kind(response.status_code))
        return response
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    rebuilt = http.Response(
        response.status_code,
        headers=response.headers,
        content=raw,
        extensions=response.extensions,
        request=request,
    )
    _read_usage(call, rebuilt.content)
    return rebuilt


class MeteringTransport:
    """The body of a metered transport, for a library with httpx's API named by ``http``.

    Mixed in before the library's ``AsyncBaseTransport``: :class:`MeteredTransport` for httpx,
    ``agent.providers.anthropic.MeteredSdkTransport`` for the Anthropic SDK's httpx2.
    """

    http: ClassVar[Any]

    def __init__(self, inner: Any = None) -> None:
        self._inner = inner or self.http.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        """Send; classify the attempt; read ``usage`` from a successful answer."""
        return await meter_attempt(self._inner, request, self.http)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


class MeteredTransport(MeteringTransport, httpx.AsyncBaseTransport):
    """An httpx transport that reports each model HTTP attempt into the current :class:`LlmCall`."""

    http: ClassVar[Any] = httpx


def metered_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for a model provider whose attempts are metered.

    Redirects are not followed: a mailbox's model URL is vetted before use (``agent.endpoint``),
    and a redirect would lead somewhere that was not.
    """
    return httpx.AsyncClient(timeout=timeout, transport=MeteredTransport())


def _note(call: LlmCall | None, kind: str) -> None:
    if call is not None:
        call.errors.append(kind)


def _status_kind(status: int) -> str:
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


#: ``usage`` fields by direction. OpenAI's ``prompt_tokens`` include cached ones; Anthropic's
#: ``input_tokens`` do not: it reports cache reads and writes apart.
_USAGE = (
    ("in", ("prompt_tokens", "input_tokens")),
    ("out", ("completion_tokens", "output_tokens")),
    ("cache_read", ("cache_read_input_tokens",)),
    ("cache_write", ("cache_creation_input_tokens",)),
)


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
    for direction, names in _USAGE:
        amount = sum(_int(usage.get(name)) for name in names)
        if amount:
            call.tokens[direction] = call.tokens.get(direction, 0) + amount


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
