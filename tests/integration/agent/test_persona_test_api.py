"""``POST /api/v1/mailboxes/{id}/persona/test`` over real HTTP: five model-written samples, the
mailbox's real decision path for each, one credit, one metadata-only activity row, nothing sent.
Refusals (tenant, pending_billing, credits, hourly limit) and garbage from the model (502)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mailhook.services import Services
from mailhook.store.models import Mailbox, User
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.llm import FakeLLM, completion, decision
from tests.integration.agent.conftest import LOOPBACK_ALLOWED
from tests.support import TwoUserApi, activity, outbox, text_of, two_user_api

URL = "/api/v1/mailboxes/{}/persona/test"
QUOTA = {"MAILHOOK_BILLING_ENFORCE_QUOTA": "true"}

SAMPLES = [
    {"from": "Ann Buyer <ann@example.com>", "subject": "Opening hours", "text": "When are you open?"},
    {"from": "bob@example.org", "subject": "Price of the Pro plan", "text": "How much is Pro?"},
    {"from": "Cleo <cleo@example.net>", "subject": "I want a refund", "text": "Refund my order 42 now."},
    {"from": "Dan <dan@example.com>", "subject": "Thanks!", "text": "Thank you, all sorted."},
    {"from": "Eve <eve@example.org>", "subject": "Shipping to Norway", "text": "Do you ship to Oslo?"},
]


def samples_answer(emails: Any = SAMPLES) -> str:
    return json.dumps({"emails": emails})


def decide(user_turn: str) -> str:
    """What a well-behaved model decides for each sample."""
    if "refund" in user_turn.lower():
        return decision("escalate", reply="We will refund you.", reason="refund asked", trigger="refunds")
    if "Thank you" in user_turn:
        return "NO_ACTION"
    return decision(reply="Happy to help: see our site.", reason="a question")


def openai_model(samples: str) -> Any:
    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        system, user = payload["messages"][0]["content"], payload["messages"][1]["content"]
        if system.startswith("You write test e-mails"):
            return 200, completion(samples)
        return 200, completion(decide(user))

    return script


@dataclass
class Api(TwoUserApi):
    owner_id: int
    mailbox_id: int

    async def test(
        self, headers: dict[str, str] | None = None, mailbox_id: int | None = None
    ) -> httpx.Response:
        return await self.http.post(URL.format(mailbox_id or self.mailbox_id), headers=headers or self.owner)

    async def set_mailbox(self, **values: Any) -> None:
        async with self.services.sessions() as session, session.begin():
            await session.execute(update(Mailbox).where(Mailbox.id == self.mailbox_id).values(**values))

    async def credits_used(self) -> int:
        async with self.services.sessions() as session:
            user = await session.get(User, self.owner_id)
        assert user is not None
        return user.credits_used


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    async with two_user_api(services) as (http, (owner_id, owner), (_, other)):
        body = {
            "kind": "hosted",
            "handle": "support",
            "persona": "You are Sam, the support assistant of Example Ltd.",
            "triggers": ["refunds", "legal threats"],
        }
        created = await http.post("/api/v1/mailboxes", json=body, headers=owner)
        assert created.status_code == 201, created.text
        yield Api(http, services, owner, other, owner_id, created.json()["id"])


@pytest.mark.parametrize("extra_env", [QUOTA])
async def test_five_samples_with_the_real_decision_path(api: Api, fake_llm: FakeLLM) -> None:
    fake_llm.script = openai_model(samples_answer())
    response = await api.test()
    assert response.status_code == 200, response.text
    samples = response.json()["samples"]
    assert len(samples) == 5
    assert all(set(s) == {"email", "decision", "reply"} for s in samples)
    assert all(set(s["email"]) == {"from", "subject", "text"} for s in samples)
    assert all(set(s["decision"]) == {"action", "reason", "trigger"} for s in samples)
    assert [s["email"]["subject"] for s in samples] == [e["subject"] for e in SAMPLES]
    assert [s["decision"]["action"] for s in samples] == ["reply", "reply", "escalate", "no_action", "reply"]
    refund = samples[2]
    assert (refund["decision"]["trigger"], refund["reply"]) == ("refunds", "We will refund you.")
    assert samples[3]["reply"] == ""
    assert samples[0]["reply"] == "Happy to help: see our site."

    generate, *decisions = fake_llm.requests
    assert len(decisions) == 5, "one call writes the samples, one decision per sample"
    assert "You are Sam" in generate["messages"][1]["content"]
    assert generate["response_format"] == {"type": "json_object"}
    for payload in decisions:  # the same prompt as real mail: persona, triggers, e-mail as data
        assert payload["messages"][0]["content"].startswith("You are Sam")
        assert "- legal threats" in payload["messages"][0]["content"]
        assert '<email role="new">' in payload["messages"][1]["content"]

    [row] = await activity(api.services)
    assert (row.action, row.mailbox_id) == ("tested_persona", api.mailbox_id)
    assert row.detail == {"samples": 5, "actions": {"reply": 3, "escalate": 1, "no_action": 1}}
    assert "refund" not in json.dumps(row.detail).lower(), "metadata only"
    assert await api.credits_used() == 1
    assert await outbox(api.services) == [], "nothing is sent"


GARBAGE = [
    "not json at all",
    samples_answer(SAMPLES[:4]),
    samples_answer([*SAMPLES, SAMPLES[0]]),
    samples_answer([{**SAMPLES[0], "bcc": "x@example.com"}, *SAMPLES[1:]]),
    samples_answer([{**SAMPLES[0], "from": "no address here"}, *SAMPLES[1:]]),
    samples_answer([{**SAMPLES[0], "subject": "Hi\r\nBcc: victim@example.com"}, *SAMPLES[1:]]),
    samples_answer([{**SAMPLES[0], "text": ""}, *SAMPLES[1:]]),
    samples_answer([{**SAMPLES[0], "text": "x" * 6000}, *SAMPLES[1:]]),
    samples_answer([{**SAMPLES[0], "subject": 7}, *SAMPLES[1:]]),
    json.dumps(SAMPLES),
    json.dumps({"emails": "five"}),
    "[" * 100_000,
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("extra_env", [QUOTA])
async def test_garbage_samples_are_a_502_and_cost_nothing(api: Api, fake_llm: FakeLLM) -> None:
    for answer in GARBAGE:
        fake_llm.script = openai_model(answer)
        response = await api.test()
        assert response.status_code == 502, (answer[:80], response.text)
        assert response.json()["error"] == "BadModelAnswer"
        assert "sample" in response.json()["detail"]
    assert len(fake_llm.requests) == len(GARBAGE), "no decisions on garbage"
    assert await activity(api.services) == []
    assert await api.credits_used() == 0


async def test_other_tenants_and_unknown_ids_are_404(api: Api, fake_llm: FakeLLM) -> None:
    assert (await api.test(headers=api.other)).status_code == 404
    assert (await api.test(mailbox_id=999_999)).status_code == 404
    assert (await api.test(mailbox_id=2**63)).status_code in (400, 404)
    assert (await api.http.post(URL.format(api.mailbox_id))).status_code == 401
    assert fake_llm.requests == []


@pytest.mark.parametrize("extra_env", [QUOTA])
async def test_refused_while_pending_billing_without_credits_or_model(api: Api, fake_llm: FakeLLM) -> None:
    await api.set_mailbox(status="pending_billing")
    paused = await api.test()
    assert paused.status_code == 409 and "pending_billing" in paused.json()["detail"]
    await api.set_mailbox(status="active")
    async with api.services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == api.owner_id).values(credits_used=10))
    broke = await api.test()
    assert broke.status_code == 402 and "credit" in broke.json()["detail"]
    async with api.services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == api.owner_id).values(credits_used=0))
    await api.set_mailbox(llm_provider="none")
    no_model = await api.test()
    assert no_model.status_code == 409 and "no model" in no_model.json()["detail"]
    await api.set_mailbox(status="deleted")
    assert (await api.test()).status_code == 409
    assert fake_llm.requests == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("extra_env", [{"MAILHOOK_AGENT_PERSONA_TEST_MAX_PER_HOUR": "1"}])
async def test_hourly_limit(api: Api, fake_llm: FakeLLM) -> None:
    fake_llm.script = openai_model(samples_answer())
    assert (await api.test()).status_code == 200
    limited = await api.test()
    assert limited.status_code == 429 and "per hour" in limited.json()["detail"]
    assert len(fake_llm.requests) == 6


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_model_down_is_503_and_costs_nothing(api: Api, fake_llm: FakeLLM) -> None:
    fake_llm.script = lambda payload: (503, {"error": "overloaded"})
    response = await api.test()
    assert response.status_code == 503
    assert await activity(api.services) == []


# --- the mailbox's own model: Anthropic -----------------------------------------------------------


@pytest.fixture
def anthropic_fake() -> Iterator[fake_anthropic.FakeAnthropic]:
    def script(received: fake_anthropic.Received) -> fake_anthropic.Reply:
        system = received.payload["system"][0]["text"]
        if system.startswith("You write test e-mails"):
            return fake_anthropic.message(samples_answer())
        return fake_anthropic.message(decide(received.payload["messages"][0]["content"]))

    server = fake_anthropic.FakeAnthropic(script=script).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("extra_env", [LOOPBACK_ALLOWED])
async def test_anthropic_override_runs_the_test(
    api: Api, fake_llm: FakeLLM, anthropic_fake: fake_anthropic.FakeAnthropic
) -> None:
    override = {
        "llm_provider": "anthropic",
        "llm_base_url": anthropic_fake.base_url,
        "llm_model": "claude-test-1",
        "llm_api_key": "sk-ant-mailbox-key-1",
    }
    patched = await api.http.patch(f"/api/v1/mailboxes/{api.mailbox_id}", json=override, headers=api.owner)
    assert patched.status_code == 200, patched.text
    response = await api.test()
    assert response.status_code == 200, response.text
    actions = [s["decision"]["action"] for s in response.json()["samples"]]
    assert actions == ["reply", "reply", "escalate", "no_action", "reply"]
    assert fake_llm.requests == [], "the install's model is not used"
    assert len(anthropic_fake.requests) == 6
    # The SDK carries the key in x-api-key (older releases) or as a bearer token (2.x).
    keys = {r.headers.get("x-api-key") or r.headers.get("authorization") for r in anthropic_fake.requests}
    assert keys in ({"sk-ant-mailbox-key-1"}, {"Bearer sk-ant-mailbox-key-1"})
    assert {r.payload["model"] for r in anthropic_fake.requests} == {"claude-test-1"}
    decisions = anthropic_fake.requests[1:]
    assert all(r.payload["system"][0]["cache_control"] == {"type": "ephemeral"} for r in decisions)
    assert "cache_control" not in anthropic_fake.requests[0].payload["system"][0]


# --- the last credit --------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("extra_env", [QUOTA])
async def test_last_credit_pauses_and_mails_the_owner_once(api: Api, fake_llm: FakeLLM) -> None:
    """Two tests on two mailboxes share the owner's last credit: both were allowed (each checked
    before either was charged), the first charge pauses every mailbox and the owner gets exactly
    one out-of-credits notice; the second charge finds them paused already and sends nothing."""
    body = {"kind": "hosted", "handle": "sales", "persona": "You are Kim, in sales."}
    second = await api.http.post("/api/v1/mailboxes", json=body, headers=api.owner)
    assert second.status_code == 201, second.text
    async with api.services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == api.owner_id).values(credits_used=9))
    both_asked = threading.Barrier(2, timeout=15)
    answer = openai_model(samples_answer())

    def script(payload: dict[str, Any]) -> tuple[int, Any]:
        if payload["messages"][0]["content"].startswith("You write test e-mails"):
            both_asked.wait()  # both tests are past their credit check before either is charged
        return answer(payload)

    fake_llm.script = script
    results = await asyncio.gather(api.test(), api.test(mailbox_id=second.json()["id"]))
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]

    [notice] = await outbox(api.services)
    assert str(notice["To"]) == "owner@example.com"
    assert str(notice["Subject"]) == "[mailhook] Out of credits: your agents are paused"
    assert "/billing" in text_of(notice)
    assert await api.credits_used() == 11, "both tests are paid; the overdraft is paid back first"
    async with api.services.sessions() as session:
        statuses = (
            await session.scalars(select(Mailbox.status).where(Mailbox.owner_id == api.owner_id))
        ).all()
    assert statuses == ["pending_billing", "pending_billing"]
    refused = await api.test()
    assert refused.status_code == 409, "paused: no third test"
    assert len(await outbox(api.services)) == 1
