"""One provider client per model configuration: the install's, and each distinct mailbox override.

Clients hold connection pools, so they are kept and reused, keyed by (provider, base URL, model,
key fingerprint): mailboxes sharing a configuration share a client, and the key itself is not a
dictionary key anyone could print. The number kept is bounded; the least recently used client is
closed when a new one would pass the bound (a call still running on it fails like a network error
and its job is retried), and :meth:`ModelRegistry.aclose` closes them all at shutdown. A mailbox
URL is vetted again before every use (``agent.endpoint``), and a mailbox key is registered with
the log scrubber the first time it is used, so even an accidental log line could not hold it.

Given the process's :class:`~mailhook.observe.Metrics`, every model it hands out (the default
included) is a :class:`~mailhook.observe.MeteredModel` labelled with its provider, so the
decision, the document pick and persona tests are all counted, whoever's model answers.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final

from mailhook.agent.decision import Decider
from mailhook.agent.endpoint import ModelUrlUnresolvable, Resolver, check_model_url
from mailhook.agent.model import Model
from mailhook.agent.overrides import effective_llm, has_override
from mailhook.agent.providers import provider_for
from mailhook.crypto import SealBroken, Sealer
from mailhook.errors import ProviderUnavailable, ValidationFailed
from mailhook.logs import get_logger, register_secrets
from mailhook.observe import MeteredModel, Metrics
from mailhook.settings import Settings
from mailhook.store.models import Mailbox

log = get_logger(__name__)

MAX_CLIENTS: Final = 128

_Key = tuple[str, str, str, str]


class StoredKeyUnreadable(ValidationFailed):
    """The mailbox's sealed API key cannot be opened (the encryption key changed)."""


class ModelRegistry:
    """The model for a mailbox: the install default, or a cached client for its override."""

    def __init__(
        self,
        settings: Settings,
        sealer: Sealer,
        default: Decider,
        *,
        resolver: Resolver | None = None,
        max_clients: int = MAX_CLIENTS,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._metrics = metrics
        self.default = self._metered(_as_model(default), settings.llm.provider)
        self._resolver = resolver
        self._max = max_clients
        self._clients: OrderedDict[_Key, Model] = OrderedDict()

    def has_model(self, mailbox: Mailbox) -> bool:
        """False when the mailbox (or the install, for a mailbox without its own) uses ``none``."""
        return (mailbox.llm_provider or self._settings.llm.provider) != "none"

    async def for_mailbox(self, mailbox: Mailbox) -> Model:
        """The mailbox's model. A refused URL or an unreadable key is :class:`ValidationFailed`
        (the owner must act); a host that does not resolve now is :class:`ProviderUnavailable`."""
        if not has_override(mailbox):
            return self.default
        try:
            llm = effective_llm(mailbox, self._settings.llm, self._sealer)
        except SealBroken:
            raise StoredKeyUnreadable(
                "the mailbox's model API key cannot be decrypted; set llm_api_key again"
            ) from None
        if mailbox.llm_base_url and llm.provider != "none":
            try:
                await check_model_url(
                    mailbox.llm_base_url,
                    allow_hosts=self._settings.agent.fetch_allow_hosts,
                    allow_http=self._settings.llm.mailbox_allow_http,
                    resolver=self._resolver,
                )
            except ModelUrlUnresolvable as exc:
                raise ProviderUnavailable(str(exc)) from None
        fingerprint = hashlib.sha256(llm.api_key.encode()).hexdigest()[:16] if llm.api_key else ""
        key: _Key = (llm.provider, llm.base_url, llm.model, fingerprint)
        model = self._clients.get(key)
        if model is None:
            register_secrets([llm.api_key])
            model = self._metered(provider_for(llm), llm.provider)
            self._clients[key] = model
            await self._evict()
        self._clients.move_to_end(key)
        return model

    def _metered(self, model: Model, provider: str) -> Model:
        # ``none`` makes no call: nothing to time or count.
        if self._metrics is None or provider == "none":
            return model
        return MeteredModel(model, self._metrics, provider)

    async def _evict(self) -> None:
        while len(self._clients) > self._max:
            _, oldest = self._clients.popitem(last=False)
            await _close(oldest)

    async def aclose(self) -> None:
        """Close every client (the default included)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for model in (*clients, self.default):
            await _close(model)


async def _close(model: object) -> None:
    closer = getattr(model, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception as exc:  # one pool failing to close must not keep the others open
            log.warning("llm_client_close_failed", error=type(exc).__name__)


def _as_model(decider: Decider) -> Model:
    """The install's provider as a :class:`Model` (it must offer ``complete`` as well)."""
    if callable(getattr(decider, "complete", None)):
        return decider  # type: ignore[return-value]  # it has both methods
    raise TypeError(f"{type(decider).__name__} offers no complete() call")
