"""Every model call is metered, by provider and purpose, with the tokens the provider reported.

Through the running app: mail to a mailbox with reference documents costs a selection and a
decision on the install's OpenAI-compatible model; mail to a mailbox with its own Anthropic model
costs one decision there; a persona test on that mailbox costs six calls (the samples and five
decisions), all counted as the test's. ``/metrics`` must show each count and token total as the
fake servers reported them, and nothing under a purpose or provider that was not used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mailhook.api.auth import issue_token
from mailhook.services import Services
from mailhook.store.accounts import Accounts
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.llm import FakeLLM, completion, decision
from tests.integration.agent.conftest import LOOPBACK_ALLOWED, DocumentServer, Page, configure_mailbox
from tests.integration.agent.conftest import is_selection as is_openai_selection
from tests.integration.test_metrics import sample
from tests.lmtp_client import lmtp_send, make_message
from tests.support import wait_for_jobs

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.parametrize("extra_env", [LOOPBACK_ALLOWED]),
]

CLAUDE = "claude@agents.test"
SAMPLES = [
    {"from": f"Person {n} <p{n}@example.com>", "subject": f"Question {n}", "text": f"Question {n}?"}
    for n in range(5)
]
# What each fake reports in ``usage`` for each kind of call.
OPENAI_SELECT = {"prompt_tokens": 50, "completion_tokens": 5}
OPENAI_DECIDE = {"prompt_tokens": 100, "completion_tokens": 7}
SAMPLES_USAGE = {"input_tokens": 400, "output_tokens": 250, "cache_read_input_tokens": 0}
# fake_anthropic.message() reports 120 in, 30 out, 1024 read from the cache, for every decision.


def openai_script(payload: dict[str, Any]) -> tuple[int, Any]:
    if is_openai_selection(payload):
        return 200, {**completion('["Pricing"]'), "usage": OPENAI_SELECT}
    return 200, {**completion(decision()), "usage": OPENAI_DECIDE}


def anthropic_script(received: fake_anthropic.Received) -> fake_anthropic.Reply:
    if received.payload["system"][0]["text"].startswith("You write test e-mails"):
        reply = fake_anthropic.message(json.dumps({"emails": SAMPLES}))
        assert isinstance(reply.body, dict)
        return fake_anthropic.Reply(body={**reply.body, "usage": SAMPLES_USAGE})
    return fake_anthropic.message(fake_anthropic.decision())


@pytest.fixture
def claude() -> Iterator[fake_anthropic.FakeAnthropic]:
    server = fake_anthropic.FakeAnthropic(script=anthropic_script).start()
    try:
        yield server
    finally:
        server.stop()


async def deliver(services: Services, recipient: str, count: int) -> None:
    data = make_message(to=recipient, subject="How much is Pro?", body="How much is the Pro plan?")
    result = await asyncio.to_thread(
        lmtp_send, services.settings.lmtp.port, "alice@example.org", [recipient], data
    )
    assert result.data[recipient].startswith("250")
    await wait_for_jobs(services, count)


def model(text: str, name: str, provider: str, purpose: str, **labels: str) -> float:
    return sample(text, name, **labels, provider=provider, purpose=purpose)


async def test_every_call_is_counted_by_provider_and_purpose(
    api: httpx.AsyncClient,
    services: Services,
    fake_llm: FakeLLM,
    claude: fake_anthropic.FakeAnthropic,
    doc_server: DocumentServer,
) -> None:
    fake_llm.script = openai_script
    doc_server.pages["/pricing"] = Page(b"Pro costs 12 EUR a month.")
    pricing = {"name": "Pricing", "description": "Plans", "url": doc_server.url("/pricing")}
    await configure_mailbox(services, documents=[pricing])
    own = await Accounts(services.sessions).add_mailbox("owner@example.com", CLAUDE)
    owner = {"Authorization": f"Bearer {issue_token(own.owner_id, services.settings.security.jwt_secret)}"}
    override = {
        "llm_provider": "anthropic",
        "llm_base_url": claude.base_url,
        "llm_model": "claude-test-1",
        "llm_api_key": "sk-ant-test-key",
    }
    patched = await api.patch(f"/api/v1/mailboxes/{own.id}", json=override, headers=owner)
    assert patched.status_code == 200, patched.text

    await deliver(services, "bot@agents.test", 1)  # install model: a selection, then the decision
    await deliver(services, CLAUDE, 2)  # the mailbox's Anthropic model: one decision
    tested = await api.post(f"/api/v1/mailboxes/{own.id}/persona/test", headers=owner)
    assert tested.status_code == 200, tested.text
    assert (len(fake_llm.requests), len(claude.requests)) == (2, 7)

    text = (await api.get("/metrics")).text
    calls = "mailhook_llm_request_seconds_count"
    tokens = "mailhook_llm_tokens_total"
    decisions = "mailhook_llm_decisions_total"
    assert model(text, calls, "openai", "select", outcome="ok") == 1
    assert model(text, tokens, "openai", "select", direction="in") == 50
    assert model(text, tokens, "openai", "select", direction="out") == 5
    assert model(text, calls, "openai", "decide", outcome="ok") == 1
    assert model(text, tokens, "openai", "decide", direction="in") == 100
    assert model(text, tokens, "openai", "decide", direction="out") == 7
    assert model(text, decisions, "openai", "decide", action="reply") == 1

    assert model(text, calls, "anthropic", "decide", outcome="ok") == 1
    assert model(text, tokens, "anthropic", "decide", direction="in") == 120
    assert model(text, tokens, "anthropic", "decide", direction="out") == 30
    assert model(text, tokens, "anthropic", "decide", direction="cache_read") == 1024
    assert model(text, calls, "anthropic", "persona_test", outcome="ok") == 6
    assert model(text, tokens, "anthropic", "persona_test", direction="in") == 400 + 5 * 120
    assert model(text, tokens, "anthropic", "persona_test", direction="out") == 250 + 5 * 30
    assert model(text, tokens, "anthropic", "persona_test", direction="cache_read") == 5 * 1024
    assert model(text, decisions, "anthropic", "persona_test", action="reply") == 5

    assert 'provider="openai",purpose="persona_test"' not in text, "the test ran on the mailbox's model"
    assert 'provider="anthropic",purpose="select"' not in text, "that mailbox has no documents"
    assert "mailhook_llm_errors_total{" not in text, "no call failed"
    assert "sk-ant-test-key" not in text and "Pro plan" not in text
