"""Backoff with jitter: one rule for every retry in PyTake (sends, webhook processing, media, jobs).

Jitter spreads retries that failed together (a Graph outage, a database restart) so they do not
come back together and fail again.
"""

from __future__ import annotations

import random

JITTER = 0.2  # ±20%


def jittered(seconds: float) -> float:
    return max(0.0, seconds * random.uniform(1.0 - JITTER, 1.0 + JITTER))


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """The wait before retry number `attempt` (0-based): base · 2^attempt, capped, jittered."""
    return jittered(min(cap, base * 2 ** max(0, attempt)))
