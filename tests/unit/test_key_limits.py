"""The per-key token buckets of the agent API (``agentapi/limits.py``) on a clock the test moves."""

from __future__ import annotations

import pytest

from mailhook.agentapi.keys import Principal, Scope
from mailhook.agentapi.limits import MAX_TRACKED, KeyLimits, KeyRateLimited, TokenBuckets
from mailhook.errors import ConfigError, RateLimited
from mailhook.settings import load_settings
from mailhook.store.models import OversightMode


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def key(key_id: int) -> Principal:
    return Principal(
        key_id, f"k{key_id}", 1, "bot@agents.test", 1, False, OversightMode.AUTONOMOUS, Scope.AGENT
    )


def test_a_minute_of_tokens_then_one_back_every_sixtieth_of_a_minute() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, clock)
    assert [buckets.take(1) for _ in range(6)] == [0.0] * 6
    assert buckets.take(1) == pytest.approx(10.0), "one token every 10 s"
    clock.now += 4.0
    assert buckets.take(1) == pytest.approx(6.0), "a refused request takes nothing"
    clock.now += 6.0
    assert buckets.take(1) == 0.0
    assert buckets.take(1) == pytest.approx(10.0)
    clock.now += 3600.0
    assert [buckets.take(1) for _ in range(7)].count(0.0) == 6, "an idle key saves at most a minute"


def test_keys_have_their_own_buckets_and_zero_means_no_limit() -> None:
    buckets = TokenBuckets(1, Clock())
    assert (buckets.take(1), buckets.take(2)) == (0.0, 0.0)
    assert buckets.take(1) > 0 and buckets.take(2) > 0
    unlimited = TokenBuckets(0, Clock())
    assert all(unlimited.take(1) == 0.0 for _ in range(1000))


def test_idle_buckets_are_forgotten_past_the_bound() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, clock)
    for key_id in range(MAX_TRACKED):
        buckets.take(key_id)
    clock.now += 2.0  # every bucket is full again
    buckets.take(MAX_TRACKED)
    assert len(buckets._buckets) == 1


def test_limits_raise_with_whole_seconds_to_wait() -> None:
    limits = KeyLimits(2, 1, Clock())
    limits.request(key(1))
    limits.request(key(1))
    with pytest.raises(KeyRateLimited) as refused:
        limits.request(key(1))
    assert refused.value.retry_after == 30 and isinstance(refused.value, RateLimited)
    assert "2 requests per minute" in str(refused.value)
    limits.send(key(1))
    with pytest.raises(KeyRateLimited, match="1 messages sent per minute; retry in 60 s"):
        limits.send(key(1))
    limits.request(key(2))


@pytest.mark.parametrize("name", ["KEY_REQUESTS_PER_MINUTE", "KEY_SENDS_PER_MINUTE"])
def test_negative_limits_are_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigError, match=name.lower()):
        load_settings({f"MAILHOOK_AGENT_{name}": "-1"})
    with pytest.raises(ConfigError, match="not a number"):
        load_settings({f"MAILHOOK_AGENT_{name}": "ten"})
