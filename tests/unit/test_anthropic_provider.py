"""The Anthropic provider: the real SDK against a fake Messages API on loopback.

Decisions, the request's shape (cached system prompt, e-mail as data, model, max_tokens, key),
the SDK's own retries, and every failure becoming ProviderUnavailable (the mail goes back to the
spool, never to the floor). Retry waits are shortened with ``retry-after-ms``, which the SDK obeys.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from mailhook.agent.decision import Action, DecisionRequest, MailboxBrief
from mailhook.agent.providers import provider_for
from mailhook.agent.providers.anthropic import AnthropicProvider
from mailhook.agent.providers.none import NoModel
from mailhook.agent.providers.openai_compat import OpenAICompatible
from mailhook.errors import ProviderUnavailable
from mailhook.mail.parse import parse_message
from mailhook.services import make_decider
from mailhook.settings import LlmSettings, load_settings
from tests.fakes.anthropic import DEFAULT_MODEL, FakeAnthropic, Reply, decision, error, in_turn, message

API_KEY = "sk-ant-test-key"
PERSONA = "You are Ada, the support assistant of Example Ltd."
QUICK = {"retry-after-ms": "10"}

MakeProvider = Callable[..., AnthropicProvider]

RAW = (
    b"From: Sam Sender <sam@example.org>\r\nTo: bot@agents.test\r\nSubject: Where is my order?\r\n"
    b"Message-ID: <q1@example.org>\r\n\r\nHello, order 1234 has not arrived yet.\r\n"
)


def _request(max_output_tokens: int = 321) -> DecisionRequest:
    brief = MailboxBrief(
        "bot@agents.test", persona=PERSONA, triggers=("refund",), max_output_tokens=max_output_tokens
    )
    return DecisionRequest(brief, parse_message(RAW))


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def make_provider(fake: FakeAnthropic) -> AsyncIterator[MakeProvider]:
    """Providers aimed at the fake, fast to fail; ``**changes`` go into LlmSettings."""
    made: list[AnthropicProvider] = []

    def make(max_retry_wait: float = 30.0, **changes: Any) -> AnthropicProvider:
        base = LlmSettings(
            provider="anthropic",
            base_url=fake.base_url,
            model=DEFAULT_MODEL,
            api_key=API_KEY,
            timeout_seconds=2.0,
            max_retries=0,
        )
        provider = AnthropicProvider(dataclasses.replace(base, **changes), max_retry_wait=max_retry_wait)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


# --- decisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action", "reply_text"),
    [
        (decision("reply", "Your order ships today."), Action.REPLY, "Your order ships today."),
        (decision("escalate", "draft", trigger="refund"), Action.ESCALATE, "draft"),
        (decision("no_action", ""), Action.NO_ACTION, ""),
        ("NO_ACTION", Action.NO_ACTION, ""),
        ("Plain text is the reply.", Action.REPLY, "Plain text is the reply."),
    ],
)
async def test_decisions(
    fake: FakeAnthropic, make_provider: MakeProvider, text: str, action: Action, reply_text: str
) -> None:
    fake.script = in_turn(message(text))
    decided = await make_provider().decide(_request())
    assert (decided.action, decided.reply_text) == (action, reply_text)


@pytest.mark.parametrize(
    ("stop_reason", "reason"),
    [("max_tokens", "cut off at max_tokens"), ("refusal", "refused")],
)
async def test_unfinished_answers_go_to_the_owner(
    fake: FakeAnthropic, make_provider: MakeProvider, stop_reason: str, reason: str
) -> None:
    # A reply cut off mid-JSON must not be mailed to the sender as raw text.
    fake.script = in_turn(
        message('{"action": "reply", "reply": "Dear Sam, your ord', stop_reason=stop_reason)
    )
    decided = await make_provider().decide(_request())
    assert decided.action is Action.ESCALATE and reason in decided.reason


async def test_request_shape(fake: FakeAnthropic, make_provider: MakeProvider) -> None:
    await make_provider(model="claude-custom-7").decide(_request(max_output_tokens=321))
    [received] = fake.requests
    assert received.path == "/v1/messages"
    payload = received.payload
    assert payload["model"] == "claude-custom-7"
    assert payload["max_tokens"] == 321
    [system] = payload["system"]
    assert system["type"] == "text" and system["cache_control"] == {"type": "ephemeral"}
    assert system["text"].startswith(PERSONA), "persona first: the cacheable prefix"
    assert "refund" in system["text"] and "<email> tags" in system["text"]
    [turn] = payload["messages"]
    assert turn["role"] == "user"
    content = turn["content"] if isinstance(turn["content"], str) else turn["content"][0]["text"]
    assert content.startswith('<email role="new">') and content.endswith("</email>")
    assert "order 1234 has not arrived" in content
    # The SDK carries the key in x-api-key (older releases) or as a bearer token (2.x).
    headers = received.headers
    assert headers.get("x-api-key") == API_KEY or headers.get("authorization") == f"Bearer {API_KEY}"


async def test_only_the_configured_endpoint_is_contacted(
    fake: FakeAnthropic, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SDK environment that must not win over mailhook's settings (all loopback, nothing listens).
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.2:9")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "true")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    contacted: list[Any] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        contacted.append(address)
        real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        contacted.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    provider = make_provider()
    await provider.decide(_request())
    await provider.decide(_request())
    host, port = fake.address
    assert contacted, "the recorder saw the SDK's connection"
    assert {str(c[:2]) if isinstance(c, tuple) else c for c in contacted} <= {str((host, port)), host}
    assert fake.requests[0].headers.get("x-api-key", API_KEY) == API_KEY
    assert "env-key" not in str(fake.requests[0].headers)
    assert "traceparent" not in fake.requests[0].headers


# --- retries and failures ---------------------------------------------------------------------


async def test_overloaded_and_500_are_retried_by_the_sdk(
    fake: FakeAnthropic, make_provider: MakeProvider
) -> None:
    # The second failure has no retry-after: the SDK's own backoff (about a second) applies.
    fake.script = in_turn(
        error(529, "overloaded_error", **QUICK), error(500, "api_error"), message(decision("reply", "ok"))
    )
    decided = await make_provider(max_retries=2).decide(_request())
    assert (decided.action, decided.reply_text) == (Action.REPLY, "ok")
    assert len(fake.requests) == 3


async def test_rate_limit_is_retried(fake: FakeAnthropic, make_provider: MakeProvider) -> None:
    fake.script = in_turn(error(429, "rate_limit_error", **QUICK), message(decision("no_action", "")))
    assert (await make_provider(max_retries=1).decide(_request())).action is Action.NO_ACTION
    assert len(fake.requests) == 2


async def test_persistent_500_is_unavailable_after_retries(
    fake: FakeAnthropic, make_provider: MakeProvider
) -> None:
    fake.script = in_turn(error(500, "api_error", **QUICK))
    with pytest.raises(ProviderUnavailable, match=r"HTTP 500 \(api_error\)"):
        await make_provider(max_retries=2).decide(_request())
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
    ],
)
async def test_client_errors_are_unavailable_not_dropped(
    fake: FakeAnthropic, make_provider: MakeProvider, status: int, kind: str
) -> None:
    fake.script = in_turn(error(status, kind, "secret detail from the API"))
    with pytest.raises(ProviderUnavailable, match=f"HTTP {status} \\({kind}\\)") as caught:
        await make_provider(max_retries=2).decide(_request())
    assert "secret detail" not in str(caught.value), "only the status and error type are kept"
    assert len(fake.requests) == 1, "the SDK does not retry 4xx; the spool retries later"


@pytest.mark.parametrize(
    "body",
    [b"this is not json{", b"[1, 2]", b'{"unexpected": true}', b'{"type": "message", "content": "x"}'],
)
async def test_garbage_answers_are_unavailable(
    fake: FakeAnthropic, make_provider: MakeProvider, body: bytes
) -> None:
    fake.script = in_turn(Reply(body=body))
    with pytest.raises(ProviderUnavailable, match="anthropic answered"):
        await make_provider().decide(_request())


async def test_timeout_is_unavailable(fake: FakeAnthropic, make_provider: MakeProvider) -> None:
    fake.script = in_turn(Reply(delay=5.0, body=message("late").body))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await make_provider(timeout_seconds=0.3).decide(_request())
    assert time.monotonic() - started < 2.0


async def test_a_huge_retry_after_is_bounded_by_the_call_budget(
    fake: FakeAnthropic, make_provider: MakeProvider
) -> None:
    # The SDK would sleep an hour as told; the provider's budget ends the call and the spool retries.
    fake.script = in_turn(error(529, "overloaded_error", retry_after="3600"))
    provider = make_provider(timeout_seconds=0.3, max_retries=1, max_retry_wait=0.2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="budget"):
        await provider.decide(_request())
    assert time.monotonic() - started < 2.0


async def test_empty_key_is_unavailable_without_a_call(
    fake: FakeAnthropic, make_provider: MakeProvider
) -> None:
    with pytest.raises(ProviderUnavailable, match="MAILHOOK_LLM_API_KEY"):
        await make_provider(api_key="").decide(_request())
    assert fake.requests == []


# --- wiring -----------------------------------------------------------------------------------


async def test_provider_for_and_make_decider() -> None:
    anthropic = provider_for(LlmSettings(provider="anthropic", api_key="k"))
    openai = provider_for(LlmSettings(provider="openai"))
    assert isinstance(anthropic, AnthropicProvider) and isinstance(openai, OpenAICompatible)
    assert isinstance(provider_for(LlmSettings()), NoModel)
    configured = make_decider(load_settings({"MAILHOOK_LLM_PROVIDER": "anthropic"}))
    assert isinstance(configured, AnthropicProvider)
    for provider in (anthropic, openai, configured):
        await provider.aclose()
