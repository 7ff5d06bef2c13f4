"""Ingest first: during a burst, spool workers give way to the doors for a bounded time.

Doors and workers share one event loop (DESIGN.md). What an upstream MTA waits for is the
``250``: during a burst every millisecond a worker holds the loop is added to some LMTP
session's answer, and Postfix throttles or defers a slow next hop. Processing is asynchronous by
design: a spooled message is safe and loses nothing by waiting a moment.

So the doors report each delivered message and this keeps a decaying estimate of the arrival
rate. While it is above ``burst_rate`` messages per second, more than the workers could keep up
with anyway, a worker waits before its next job and between pipeline steps, at most
``max_wait`` seconds each time: under sustained overload processing slows down but never
stops. Below that rate nothing waits, so ordinary traffic is processed on arrival.
"""

from __future__ import annotations

import asyncio
import math
import time

#: Time constant of the rate estimate (seconds): short enough to see a burst end quickly.
_TAU = 0.2


class IngestPriority:
    """Doors call :meth:`arrived`; workers await :meth:`lull` before each job and step."""

    def __init__(self, burst_rate: float, max_wait: float) -> None:
        self.burst_rate = burst_rate
        self.max_wait = max_wait
        self._rate = 0.0
        self._at = time.monotonic()

    def arrived(self) -> None:
        """A door accepted (or is accepting) one message."""
        now = time.monotonic()
        self._rate = self._decayed(now) + 1.0 / _TAU
        self._at = now

    def rate(self) -> float:
        """Estimated arrivals per second right now."""
        return self._decayed(time.monotonic())

    def _decayed(self, now: float) -> float:
        return self._rate * math.exp(-(now - self._at) / _TAU)

    async def lull(self) -> None:
        """Return at once below the burst rate; else when it falls below, or after ``max_wait``."""
        if self.burst_rate <= 0 or self.max_wait <= 0:
            return
        deadline = time.monotonic() + self.max_wait
        while True:
            now = time.monotonic()
            rate = self._decayed(now)
            if rate <= self.burst_rate or now >= deadline:
                return
            # Sleep until the estimate would fall below the threshold with no new arrival.
            until_calm = _TAU * math.log(rate / self.burst_rate)
            await asyncio.sleep(min(max(until_calm, 0.005), deadline - now))
