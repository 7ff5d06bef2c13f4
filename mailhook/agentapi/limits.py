"""Per-key rate limits of the agent API, on top of the per-address limit of every API route.

The per-address limit (``api/protections.py``) stops a flood from one place. These stop one key
from taking more than its share, however many addresses it comes from, and keep one busy agent
from starving the other keys behind the same address (a NAT, one host running several agents):

- every request authenticated with a key, REST (``/api/v1/agent/*``) and MCP over HTTP (``/mcp``),
  takes one token from the key's request bucket (``agent.key_requests_per_minute``);
- the primitives that send mail (``send_email``, ``reply_email``; any transport, stdio MCP
  included) also take one from a smaller bucket (``agent.key_sends_per_minute``).

A token bucket per key: it holds a minute's worth, refills continuously, and an empty one answers
:class:`KeyRateLimited` with the seconds until the next token (``Retry-After``). A refused request
takes nothing. The buckets live in process memory like the other API limits: with several nodes
each node counts on its own, so across N nodes a key may make up to N times the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mailhook.agentapi.keys import Principal
from mailhook.errors import RateLimited
from mailhook.settings import AgentSettings

#: Buckets kept before full (idle) ones are dropped; a dropped bucket would be full anyway.
MAX_TRACKED: Final = 10_000


class KeyRateLimited(RateLimited):
    """A key is over one of its limits; ``retry_after`` is whole seconds until it may go on."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket of ``per_minute`` tokens per key id; ``per_minute <= 0`` never refuses."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def take(self, key_id: int) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[key_id] = _Bucket(float(self.per_minute), now)
        bucket.tokens = self._level(bucket, now)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate)

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < MAX_TRACKED:
            return
        for key_id in [k for k, b in self._buckets.items() if self._level(b, now) >= self.per_minute]:
            del self._buckets[key_id]


class KeyLimits:
    """The request and send limits of every agent key (one instance per process)."""

    def __init__(
        self, requests_per_minute: int, sends_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._requests = TokenBuckets(requests_per_minute, clock)
        self._sends = TokenBuckets(sends_per_minute, clock)

    @classmethod
    def from_settings(cls, settings: AgentSettings, clock: Callable[[], float] = time.monotonic) -> KeyLimits:
        """The limits ``agent.key_requests_per_minute`` and ``agent.key_sends_per_minute`` say."""
        return cls(settings.key_requests_per_minute, settings.key_sends_per_minute, clock)

    def request(self, principal: Principal) -> None:
        """Count one authenticated request of the key; :class:`KeyRateLimited` past the limit."""
        _check(self._requests, principal, "requests")

    def send(self, principal: Principal) -> None:
        """Count one message the key sends; :class:`KeyRateLimited` past the limit."""
        _check(self._sends, principal, "messages sent")


def _check(buckets: TokenBuckets, principal: Principal, what: str) -> None:
    wait = buckets.take(principal.key_id)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise KeyRateLimited(
            f"this API key is over its limit of {buckets.per_minute} {what} per minute; retry in {seconds} s",
            seconds,
        )
