"""OpenAI-compatible chat completions over httpx (OpenAI, Ollama, vLLM, llama.cpp, OpenRouter).

Retries 429 and 5xx with exponential backoff (honouring ``Retry-After`` up to a cap); when the
provider stays down the call raises :class:`ProviderUnavailable`, which sends the message back to
the spool for a later attempt, never to the floor.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mailhook.agent.decision import Action, Decision, DecisionRequest, parse_answer
from mailhook.agent.model import Completion, Prompt
from mailhook.agent.prompts import decision_prompt
from mailhook.errors import ProviderUnavailable
from mailhook.logs import get_logger
from mailhook.observe import metered_client
from mailhook.settings import LlmSettings

log = get_logger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


class OpenAICompatible:
    """One chat-completions call per decision (and per document selection)."""

    def __init__(self, settings: LlmSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        # Metered (observe.py): tokens and failed attempts count once the call is wrapped.
        self._client = client or metered_client(settings.timeout_seconds)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def complete(self, prompt: Prompt) -> Completion:
        """One chat-completions call."""
        payload: dict[str, Any] = {
            "model": self._settings.model,
            "max_tokens": prompt.max_tokens,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
        }
        if prompt.json_object:
            payload["response_format"] = {"type": "json_object"}
        data = await self._post(payload)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ProviderUnavailable("provider answered without choices[0].message.content") from None
        # A JSON answer cut off mid-way would otherwise be mailed as raw text.
        cut_off = isinstance(choice, dict) and choice.get("finish_reason") == "length"
        return Completion(str(text), "model answer was cut off at max_tokens" if cut_off else "")

    async def decide(self, request: DecisionRequest) -> Decision:
        """Ask the model; parse its answer."""
        answer = await self.complete(decision_prompt(request))
        if answer.unfinished:
            return Decision(Action.ESCALATE, reason=answer.unfinished)
        return parse_answer(answer.text)

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._settings.api_key}"} if self._settings.api_key else {}
        attempts = self._settings.max_retries + 1
        for attempt in range(attempts):
            delay = 0.5 * 2**attempt
            try:
                response = await self._client.post(self._url, json=payload, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("llm_transport_error", error=type(exc).__name__, attempt=attempt)
            else:
                if response.status_code == 200:
                    return _json(response)
                log.warning("llm_http_error", status=response.status_code, attempt=attempt)
                if response.status_code not in RETRY_STATUSES:
                    raise ProviderUnavailable(f"provider answered HTTP {response.status_code}")
                delay = _retry_after(response) or delay
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
        raise ProviderUnavailable("provider unavailable after retries")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        raise ProviderUnavailable("provider answered with invalid JSON") from None
    if not isinstance(value, dict):
        raise ProviderUnavailable("provider answered with a non-object JSON")
    return value


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers.get("retry-after", "")), MAX_RETRY_AFTER)
    except ValueError:
        return None
