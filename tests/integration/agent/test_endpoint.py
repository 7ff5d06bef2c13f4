"""A mailbox's model URL: the SSRF rules (names resolving to private addresses included, through an
injected resolver), the allow-list, and the registry's client cache and shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailhook.agent.endpoint import ModelUrlRefused, ModelUrlUnresolvable, check_model_url
from mailhook.agent.overrides import effective_llm
from mailhook.agent.providers.none import NoModel
from mailhook.agent.providers.openai_compat import OpenAICompatible
from mailhook.agent.registry import ModelRegistry, StoredKeyUnreadable
from mailhook.crypto import Sealer
from mailhook.errors import ProviderUnavailable
from mailhook.settings import Settings, ensure_secrets, load_settings
from mailhook.store.models import Mailbox

ANSWERS = {
    "models.example.com": ["93.184.216.34"],
    "internal.example.com": ["10.1.2.3"],
    "mixed.example.com": ["93.184.216.34", "169.254.169.254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
}


async def resolver(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        raise OSError("NXDOMAIN")
    return ANSWERS[host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/v1", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]:8443/v1", "loopback"),
        ("https://internal.example.com/v1", "resolves to 10.1.2.3"),
        ("https://mixed.example.com/v1", "resolves to 169.254.169.254"),
        ("https://mapped.example.com/v1", "loopback"),
        ("http://models.example.com/v1", "https://"),
        ("ftp://models.example.com/v1", "https://"),
        ("https://user:pw@models.example.com/v1", "user name or password"),
        ("https://models.example.com/v1?key=secret", "query"),
        ("https://models.example.com/v1#x", "fragment"),
        ("https://models.example.com/v 1", "spaces"),
        ("https://", "no host"),
        ("https://models.example.com/" + "a" * 600, "at most 500"),
        ("not-a-url", "https://"),
    ],
)
async def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(ModelUrlRefused, match=reason):
        await check_model_url(url, resolver=resolver)


async def test_public_urls_and_the_allow_list() -> None:
    assert await check_model_url("https://models.example.com/v1/", resolver=resolver) == (
        "https://models.example.com/v1"
    )
    allowed = await check_model_url(
        "http://internal.example.com:8080/v1",
        allow_hosts="other.example.com, internal.example.com:8080",
        allow_http=True,
        resolver=resolver,
    )
    assert allowed == "http://internal.example.com:8080/v1"
    with pytest.raises(ModelUrlRefused, match=r"10\.1\.2\.3"):  # the allowed port is 8080 only
        await check_model_url(
            "https://internal.example.com/v1", allow_hosts="internal.example.com:8080", resolver=resolver
        )
    assert await check_model_url("http://127.0.0.1:9/v1", allow_hosts="127.0.0.1", allow_http=True)
    with pytest.raises(ModelUrlUnresolvable):
        await check_model_url("https://nowhere.example.com/v1", resolver=resolver)


def settings(tmp_path: Path, **env: str) -> Settings:
    base = {"MAILHOOK_DATA_DIR": str(tmp_path), "MAILHOOK_LLM_PROVIDER": "openai"}
    built, _ = ensure_secrets(load_settings({**base, "MAILHOOK_LLM_API_KEY": "install-key", **env}))
    return built


def mailbox(sealer: Sealer, key: str | None = None, **columns: str) -> Mailbox:
    values = {"llm_provider": "", "llm_base_url": "", "llm_model": "", **columns}
    sealed = sealer.seal(key.encode()) if key else None
    return Mailbox(address="bot@agents.test", llm_api_key_sealed=sealed, **values)


def test_the_install_key_never_goes_to_a_tenant_url(tmp_path: Path) -> None:
    config = settings(tmp_path, MAILHOOK_LLM_BASE_URL="https://install.example.com/v1")
    sealer = Sealer(config.security.encryption_key)
    same = effective_llm(mailbox(sealer, llm_model="bigger"), config.llm, sealer)
    assert (same.base_url, same.model, same.api_key) == (
        "https://install.example.com/v1",
        "bigger",
        "install-key",
    )
    moved = effective_llm(mailbox(sealer, llm_base_url="https://tenant.example.com/v1"), config.llm, sealer)
    assert (moved.base_url, moved.api_key) == ("https://tenant.example.com/v1", "")
    other = effective_llm(mailbox(sealer, llm_provider="anthropic"), config.llm, sealer)
    assert (other.provider, other.base_url, other.api_key) == ("anthropic", "", "")
    own = effective_llm(
        mailbox(sealer, "tenant-key", llm_base_url="https://t.example.com"), config.llm, sealer
    )
    assert own.api_key == "tenant-key"


async def test_registry_caches_per_configuration_and_closes_all(tmp_path: Path) -> None:
    config = settings(tmp_path)
    sealer = Sealer(config.security.encryption_key)
    default = OpenAICompatible(config.llm)
    registry = ModelRegistry(config, sealer, default, resolver=resolver, max_clients=2)
    plain = mailbox(sealer)
    assert await registry.for_mailbox(plain) is default
    url = "https://models.example.com/v1"
    first = await registry.for_mailbox(mailbox(sealer, "k1", llm_base_url=url))
    again = await registry.for_mailbox(mailbox(sealer, "k1", llm_base_url=url))
    other_key = await registry.for_mailbox(mailbox(sealer, "k2", llm_base_url=url))
    assert first is again and first is not other_key
    assert isinstance(await registry.for_mailbox(mailbox(sealer, llm_provider="none")), NoModel)
    assert isinstance(first, OpenAICompatible) and first._client.is_closed, "evicted past max_clients"
    with pytest.raises(ModelUrlRefused):
        await registry.for_mailbox(mailbox(sealer, llm_base_url="https://internal.example.com/v1"))
    with pytest.raises(ProviderUnavailable):
        await registry.for_mailbox(mailbox(sealer, llm_base_url="https://nowhere.example.com/v1"))
    rotated = Sealer(settings(tmp_path / "new").security.encryption_key)
    with pytest.raises(StoredKeyUnreadable):
        await registry.for_mailbox(mailbox(rotated, "k3", llm_model="m"))
    await registry.aclose()
    assert default._client.is_closed
    assert isinstance(other_key, OpenAICompatible) and other_key._client.is_closed
