"""/metrics after real traffic: model latency, tokens, errors, decisions, guard holds, jobs.

Messages go in through the LMTP door of the running app; the fake model answers over HTTP. The
counters must show exactly what happened: one failed attempt (HTTP 500), then two answers with
known token usage, one reply sent and one held by the outbound guard.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from mailhook.services import Services
from tests.fakes.llm import FakeLLM, completion, decision
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

pytestmark = pytest.mark.parametrize(
    "extra_env", [{"MAILHOOK_GUARD_INTERNAL_HOSTNAMES": "db1.corp.example.com"}]
)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in an exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def decide(**labels: str) -> dict[str, str]:
    """Labels of a model series of the install's (OpenAI-compatible) decisions."""
    return {**labels, "provider": "openai", "purpose": "decide"}


def scripted_model(fake: FakeLLM) -> None:
    """First call: HTTP 500. Then a normal reply, or one naming an internal host."""

    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        if len(fake.requests) == 1:
            return 500, {"error": {"message": "overloaded"}}
        prompt = json.dumps(payload)
        text = "Our database db1.corp.example.com is down." if "leaky" in prompt else "Thanks!"
        body = completion(decision(reply=text))
        body["usage"] = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
        return 200, body

    fake.script = script


async def test_metrics_count_one_message_each_way(
    api: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    scripted_model(fake_llm)
    port = services.settings.lmtp.port
    first = await asyncio.to_thread(
        lmtp_send, port, "alice@example.org", ["bot@agents.test"], make_message(subject="plain")
    )
    assert first.data["bot@agents.test"].startswith("250")
    await wait_for_jobs(services, 1)
    second = await asyncio.to_thread(
        lmtp_send, port, "bob@example.org", ["bot@agents.test"], make_message(subject="leaky question")
    )
    assert second.data["bot@agents.test"].startswith("250")
    await wait_for_jobs(services, 2)

    response = await api.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert len(fake_llm.requests) == 3
    assert sample(text, "mailhook_llm_errors_total", **decide(kind="http_5xx")) == 1
    assert sample(text, "mailhook_llm_request_seconds_count", **decide(outcome="error")) == 1
    assert sample(text, "mailhook_llm_request_seconds_count", **decide(outcome="ok")) == 2
    assert sample(text, "mailhook_llm_tokens_total", **decide(direction="in")) == 200
    assert sample(text, "mailhook_llm_tokens_total", **decide(direction="out")) == 14
    assert sample(text, "mailhook_llm_decisions_total", **decide(action="reply")) == 2
    assert sample(text, "mailhook_jobs_total", outcome="retry") == 1
    assert sample(text, "mailhook_jobs_total", outcome="replied") == 1
    assert sample(text, "mailhook_jobs_total", outcome="queued") == 1
    assert sample(text, "mailhook_job_duration_seconds_count", outcome="replied") == 1
    assert sample(text, "mailhook_guard_findings_total", rule="internal.hostname", severity="high") == 1
    assert sample(text, "mailhook_guard_holds_total", severity="high") == 1
    assert sample(text, "mailhook_spool_jobs", status="done") == 2
    assert sample(text, "mailhook_spool_oldest_queued_seconds") == 0
    assert "# TYPE mailhook_llm_request_seconds histogram" in text
    assert "alice@example.org" not in text and "leaky" not in text, "no addresses or content"


async def test_model_failures_are_counted_by_kind(
    api: httpx.AsyncClient, services: Services, fake_llm: FakeLLM
) -> None:
    """A body that is not JSON, then a 429, then a success: each attempt is classified."""
    answers: list[tuple[int, Any]] = [
        (200, b"<html>gateway</html>"),
        (429, {"error": {}}),
        (200, completion(decision())),
    ]
    fake_llm.script = lambda payload: answers[min(len(fake_llm.requests), len(answers)) - 1]
    port = services.settings.lmtp.port
    await asyncio.to_thread(lmtp_send, port, "carol@example.org", ["bot@agents.test"], make_message())
    await wait_for_jobs(services, 1)
    text = (await api.get("/metrics")).text
    assert sample(text, "mailhook_llm_errors_total", **decide(kind="invalid_json")) == 1
    assert sample(text, "mailhook_llm_errors_total", **decide(kind="http_429")) == 1
    assert sample(text, "mailhook_llm_decisions_total", **decide(action="reply")) == 1
    assert sample(text, "mailhook_jobs_total", outcome="retry") == 2
    assert sample(text, "mailhook_llm_tokens_total", **decide(direction="in")) == 0, (
        "no usage block: no tokens"
    )
