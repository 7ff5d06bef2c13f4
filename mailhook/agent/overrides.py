"""Per-mailbox model overrides: validation of what a tenant sets, and the settings they amount to.

A mailbox may name its own provider (``""`` = the install's, ``openai``, ``anthropic``, ``none``),
endpoint, model and API key. The key is write-only: it is sealed with the installation's Fernet
keys (``llm_api_key_sealed``) and only ``has_llm_api_key`` is ever shown. The endpoint is vetted
by :mod:`mailhook.agent.endpoint` (SSRF).

The install's own API key is used only when the mailbox talks to the install's own endpoint:
a tenant who changes the URL or the provider must bring a key, or the install's key would be
sent to a server the tenant chose.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

from mailhook.agent.endpoint import check_model_url
from mailhook.crypto import Sealer
from mailhook.errors import ValidationFailed
from mailhook.settings import LlmSettings, Settings
from mailhook.store.models import Mailbox

PROVIDERS: Final = ("", "openai", "anthropic", "none")
MAX_MODEL: Final = 200
MAX_KEY: Final = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_provider(value: str) -> str:
    """``""`` (the install's), ``openai``, ``anthropic`` or ``none``."""
    if value not in PROVIDERS:
        raise ValidationFailed('llm_provider must be "" (the install default), openai, anthropic or none')
    return value


def clean_model(value: str) -> str:
    """A model name: at most 200 characters, no control characters; ``""`` = the install's."""
    model = value.strip()
    if len(model) > MAX_MODEL:
        raise ValidationFailed(f"llm_model must be at most {MAX_MODEL} characters")
    if _CONTROL.search(model):
        raise ValidationFailed("llm_model must not contain control characters")
    return model


async def clean_endpoint_and_key(
    base_url: str | None, api_key: str | None, settings: Settings, sealer: Sealer
) -> dict[str, Any]:
    """Column values for a sent ``llm_base_url`` (vetted) and ``llm_api_key`` (sealed).

    ``None`` means not sent; ``""`` clears (the install's endpoint; no key of its own).
    """
    values: dict[str, Any] = {}
    if base_url is not None and base_url.strip():
        values["llm_base_url"] = await check_model_url(
            base_url.strip(),
            allow_hosts=settings.agent.fetch_allow_hosts,
            allow_http=settings.llm.mailbox_allow_http,
        )
    elif base_url is not None:
        values["llm_base_url"] = ""
    if api_key is not None:
        key = api_key.strip()
        if len(key) > MAX_KEY:
            raise ValidationFailed(f"llm_api_key must be at most {MAX_KEY} characters")
        if _CONTROL.search(key):
            raise ValidationFailed("llm_api_key must not contain control characters")
        values["llm_api_key_sealed"] = sealer.seal(key.encode()) if key else None
    return values


def has_override(mailbox: Mailbox) -> bool:
    """True when the mailbox changes anything about the install's model."""
    return bool(
        mailbox.llm_provider or mailbox.llm_base_url or mailbox.llm_model or mailbox.llm_api_key_sealed
    )


def effective_llm(mailbox: Mailbox, install: LlmSettings, sealer: Sealer) -> LlmSettings:
    """The model settings this mailbox runs on (the install's, with the mailbox's changes)."""
    provider = mailbox.llm_provider or install.provider
    own_endpoint = provider == install.provider and mailbox.llm_base_url in ("", install.base_url)
    base_url = mailbox.llm_base_url or (install.base_url if provider == install.provider else "")
    if mailbox.llm_api_key_sealed is not None:
        key = sealer.open(mailbox.llm_api_key_sealed).decode()
    else:
        key = install.api_key if own_endpoint else ""
    return dataclasses.replace(
        install,
        provider=provider,  # type: ignore[arg-type]  # checked by clean_provider
        base_url=base_url,
        model=mailbox.llm_model or install.model,
        api_key=key,
    )
