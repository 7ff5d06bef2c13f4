"""Retry delays with jitter, shared by the spool, the IMAP door and the webhook dispatcher."""

from __future__ import annotations

import random

# A generator of our own: the module-level one belongs to everything else in the process.
_RANDOM = random.Random()  # noqa: S311 - spreading retries out, not a secret


def jittered(delay: float) -> float:
    """``delay`` moved to a random point of its upper half ("equal jitter"): many nodes or accounts
    that failed together retry spread out instead of in lock step."""
    return delay * (0.5 + _RANDOM.random() / 2)
