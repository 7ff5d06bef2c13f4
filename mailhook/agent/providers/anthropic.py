"""Anthropic's Messages API through the official ``anthropic`` SDK.

The SDK retries 408/409/429/5xx/529 and connection failures itself (``llm.max_retries`` times,
exponential backoff, honouring ``retry-after``). Every failure it finally raises, including
401/403/400/404, becomes :class:`ProviderUnavailable`: the message goes back to the spool for a
later attempt and is never dropped (DESIGN.md invariant 1). The whole call is also bounded, because
the SDK obeys any ``retry-after`` a server sends, however long.

Its HTTP client is mailhook's: an ``httpx2`` client (the library this SDK uses) whose transport
meters every attempt like the other providers' (``observe.MeteringTransport``), and which follows no
redirect.

The system prompt (persona first, see ``prompts.py``) is sent as one text block marked
``cache_control: ephemeral``, so messages to the same mailbox reuse the cached prefix.

Only the configured endpoint is contacted: the base URL and the key come from mailhook's settings,
never from the SDK's own environment variables or credential profiles, and the SDK's OpenTelemetry
spans are off so no message content can reach a tracer.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import anthropic
import httpx2
from anthropic.types import Message, TextBlock, TextBlockParam

from mailhook.agent.decision import Action, Decision, DecisionRequest, parse_answer
from mailhook.agent.model import Completion, Prompt
from mailhook.agent.prompts import decision_prompt
from mailhook.errors import ProviderUnavailable
from mailhook.logs import get_logger
from mailhook.observe import MeteringTransport
from mailhook.settings import LlmSettings

log = get_logger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
# Longest wait between two attempts that the call's time budget allows for.
MAX_RETRY_WAIT = 30.0
# Answers that stopped for these reasons are not the model's finished decision.
UNFINISHED = {
    "max_tokens": "model answer was cut off at max_tokens",
    "refusal": "model refused to answer",
}


class AnthropicProvider:
    """One Messages API call per decision."""

    def __init__(
        self,
        settings: LlmSettings,
        *,
        max_retry_wait: float = MAX_RETRY_WAIT,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        attempts = settings.max_retries + 1
        self._budget = (settings.timeout_seconds + max_retry_wait) * attempts
        self._client = anthropic.AsyncAnthropic(
            # An explicit key (even empty) stops the SDK from looking for credentials elsewhere.
            api_key=settings.api_key,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            open_telemetry=False,
            http_client=http_client or metered_sdk_client(settings.timeout_seconds),
        )

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self._client.close()

    async def complete(self, prompt: Prompt) -> Completion:
        """One Messages API call."""
        if not self._settings.api_key:
            # The SDK would send an empty bearer token; the mail waits until a key is configured.
            raise _unavailable("MAILHOOK_LLM_API_KEY (or the mailbox's llm_api_key) is empty")
        answer = await self._create(prompt)
        log.debug("llm_usage", provider="anthropic", **_usage(answer))
        unfinished = UNFINISHED.get(str(getattr(answer, "stop_reason", "")), "")
        return Completion("" if unfinished else _text(answer), unfinished)

    async def decide(self, request: DecisionRequest) -> Decision:
        """Ask the model; parse its answer."""
        answer = await self.complete(decision_prompt(request))
        if answer.unfinished:
            return Decision(Action.ESCALATE, reason=answer.unfinished)
        return parse_answer(answer.text)

    async def _create(self, prompt: Prompt) -> Message:
        system: TextBlockParam = {"type": "text", "text": prompt.system}
        if prompt.cache_system:
            system["cache_control"] = {"type": "ephemeral"}
        try:
            async with asyncio.timeout(self._budget):
                answer = await self._client.messages.create(
                    model=self._settings.model,
                    max_tokens=prompt.max_tokens,
                    system=[system],
                    messages=[{"role": "user", "content": prompt.user}],
                )
        except anthropic.APIStatusError as exc:
            raise _unavailable(f"anthropic answered HTTP {exc.status_code}{_kind(exc.body)}") from None
        except anthropic.APITimeoutError:
            raise _unavailable("anthropic timed out") from None
        except anthropic.APIConnectionError:
            raise _unavailable("anthropic could not be reached") from None
        except anthropic.APIError as exc:  # e.g. a 200 whose body is not a Message
            raise _unavailable(f"anthropic answered unusably ({type(exc).__name__})") from None
        except TimeoutError:
            raise _unavailable(f"anthropic call exceeded its {self._budget:.0f} s budget") from None
        except ValueError:  # a body that is not JSON at all
            raise _unavailable("anthropic answered with invalid JSON") from None
        # Without strict validation the SDK hands back whatever JSON came (a list, say).
        if not isinstance(answer, Message):
            raise _unavailable("anthropic answered with something other than a message")
        return answer


class MeteredSdkTransport(MeteringTransport, httpx2.AsyncBaseTransport):
    """The SDK's transport: each attempt reported like the httpx providers' (``observe``)."""

    http: ClassVar[Any] = httpx2


def metered_sdk_client(timeout: float) -> httpx2.AsyncClient:
    """The SDK's HTTP client: metered, no redirects (the SDK still sets each request's timeout)."""
    return httpx2.AsyncClient(timeout=timeout, transport=MeteredSdkTransport())


def _text(answer: Message) -> str:
    content = getattr(answer, "content", None)
    if not isinstance(content, list):
        raise _unavailable("anthropic answered without content")
    return "".join(block.text for block in content if isinstance(block, TextBlock))


def _kind(body: object) -> str:
    """The API's error type (``overloaded_error``...), never its message text."""
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return f" ({kind})" if isinstance(kind, str) else ""


def _usage(answer: Message) -> dict[str, Any]:
    usage = getattr(answer, "usage", None)
    names = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return {name: getattr(usage, name, None) for name in names}


def _unavailable(reason: str) -> ProviderUnavailable:
    log.warning("llm_unavailable", provider="anthropic", reason=reason)
    return ProviderUnavailable(reason)
