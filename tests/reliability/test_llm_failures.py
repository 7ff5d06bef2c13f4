"""The model fails: HTTP 500, timeouts, bodies that are not JSON, answers with no usable action.

A failed model call is a temporary failure: the job goes back to the spool with backoff, and
after ``spool.max_attempts`` to dead-letter (never to the floor). Once the model recovers,
messages are answered, each exactly once, and a dead letter retried by the operator
(``mailhook dead-letter retry``) is answered once too.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from typing import Any

import pytest

from mailhook.services import Services
from tests.fakes.llm import FakeLLM, completion, decision
from tests.lmtp_client import lmtp_send, make_message
from tests.reliability.accounting import FAST_RETRIES, SQLITE_ONLY, accounted_for
from tests.support import outbox

pytestmark = SQLITE_ONLY


async def send(services: Services, count: int, prefix: str) -> set[str]:
    """``count`` messages from different senders; returns their Message-IDs."""
    ids = set()
    for n in range(count):
        message_id = f"<{prefix}-{n}@example.org>"
        raw = make_message(sender=f"s{n}@example.org", subject=f"{prefix} {n}", message_id=message_id)
        result = await asyncio.to_thread(
            lmtp_send, services.settings.lmtp.port, f"s{n}@example.org", ["bot@agents.test"], raw
        )
        assert result.data["bot@agents.test"].startswith("250 ")
        ids.add(message_id)
    return ids


@pytest.mark.parametrize("extra_env", [{**FAST_RETRIES, "MAILHOOK_SPOOL_MAX_ATTEMPTS": "3"}])
async def test_model_down_dead_letters_then_operator_retry_answers_once(
    runtime: Any, services: Services, fake_llm: FakeLLM
) -> None:
    healthy = threading.Event()

    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        return (200, completion(decision())) if healthy.is_set() else (500, {"error": "down"})

    fake_llm.script = script
    await send(services, 3, "down")
    accounting = await accounted_for(services, 3)
    assert (accounting.dead, accounting.replies) == (3, 0)
    assert len(fake_llm.requests) == 9, "three attempts each, then dead-letter"
    dead = await services.spool.dead_letters()
    assert all(job.last_error.startswith("provider") for job in dead), "the reason, for the operator"
    assert services.metrics.llm_errors.get("http_5xx") == 9, "every failed attempt is counted"

    healthy.set()
    for job in dead:
        assert await services.spool.requeue(job.id)
    accounting = await accounted_for(services, 3)
    assert (accounting.done, accounting.dead, accounting.replies) == (3, 0, 3)
    assert len(fake_llm.requests) == 12


@pytest.mark.parametrize("extra_env", [{**FAST_RETRIES, "MAILHOOK_LLM_TIMEOUT_SECONDS": "0.4"}])
async def test_flaky_model_every_message_answered_exactly_once(
    runtime: Any, services: Services, fake_llm: FakeLLM
) -> None:
    """Each message meets three failures (500, timeout, a body that is not JSON, a 200 without
    choices: a different mix per message), then an answer: a reply, or for every fourth message
    a JSON answer with no usable action, which is escalated to the owner."""
    failures: list[tuple[int, Any]] = [
        (500, {"error": {"type": "server_error"}}),
        (-1, None),  # a timeout: longer than llm.timeout_seconds
        (200, b'{"choices": [{"message": '),
        (200, {"id": "x", "object": "chat.completion"}),
    ]
    attempts: Counter[int] = Counter()
    lock = threading.Lock()

    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        match = re.search(r"flaky (\d+)", json.dumps(payload))
        assert match is not None
        n = int(match.group(1))
        with lock:
            attempt = attempts[n]
            attempts[n] += 1
        if attempt < 3:
            status, body = failures[(n + attempt) % len(failures)]
            if status == -1:
                time.sleep(1.0)
                return 200, completion(decision())
            return status, body
        return 200, completion('{"action": 42}' if n % 4 == 0 else decision())

    fake_llm.script = script
    sent = await send(services, 12, "flaky")
    accounting = await accounted_for(services, 12, timeout=60)
    assert accounting.outcomes == {"replied": 9, "escalated": 3}
    assert set(attempts.values()) == {4}, "three failed attempts, then one answer: no extra call"
    # Nine replies to the senders and three escalation notices to the owner, each exactly once.
    replied_to = {str(m["In-Reply-To"]) for m in await outbox(services) if m["In-Reply-To"]}
    assert accounting.replies == 12
    assert replied_to == {f"<flaky-{n}@example.org>" for n in range(12) if n % 4}
    assert len(sent) == 12
    kinds = services.metrics.llm_errors
    assert kinds.get("http_5xx") + kinds.get("timeout") + kinds.get("invalid_json") == 27
    assert kinds.get("bad_response") == 9
