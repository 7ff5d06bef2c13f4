"""Ingest first: workers wait during a burst at the doors, never longer than the cap."""

from __future__ import annotations

import time

from mailhook.spool.priority import IngestPriority


async def test_ordinary_traffic_never_waits() -> None:
    priority = IngestPriority(burst_rate=50, max_wait=5)
    for _ in range(3):
        priority.arrived()
    started = time.monotonic()
    await priority.lull()
    assert time.monotonic() - started < 0.5
    assert priority.rate() < 50


async def test_a_burst_makes_workers_wait_but_only_up_to_the_cap() -> None:
    priority = IngestPriority(burst_rate=50, max_wait=0.3)
    for _ in range(200):
        priority.arrived()
    assert priority.rate() > 50
    started = time.monotonic()
    await priority.lull()
    waited = time.monotonic() - started
    assert 0.25 <= waited < 3


async def test_waiting_ends_when_the_burst_ends() -> None:
    priority = IngestPriority(burst_rate=50, max_wait=30)
    for _ in range(20):  # ~100 msg/s estimated: calm again after about 0.14 s without arrivals
        priority.arrived()
    started = time.monotonic()
    await priority.lull()
    assert time.monotonic() - started < 5
    assert priority.rate() <= 50


async def test_zero_turns_the_priority_off() -> None:
    priority = IngestPriority(burst_rate=0, max_wait=30)
    for _ in range(500):
        priority.arrived()
    started = time.monotonic()
    await priority.lull()
    assert time.monotonic() - started < 0.5
