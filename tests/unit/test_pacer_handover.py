"""The sends pool's pacer: the dispatcher that takes a number over from another process knows its last second."""

from __future__ import annotations

import time
import uuid

from shared.redis_client import get_redis
from workers.tasks import sends


def _fill(pacer: sends._Pacer, count: int) -> None:
    for _ in range(count):
        sends._Pacer.done(pacer, pacer.wait_until(0.0))


def test_the_next_process_waits_out_the_second_the_previous_one_filled(settings):
    number_id = str(uuid.uuid4())
    try:
        before = sends._pacer(uuid.UUID(number_id), 5)
        _fill(before, 5)  # five requests came back just now: a sixth must wait about a second
        sends._hand_over_window(number_id)
        sends._pacers.clear()  # another process: nothing of this number in memory

        sends._take_over_window(number_id)
        after = sends._pacer(uuid.UUID(number_id), 5)
        assert after is not before and len(after.window) == 5
        started = time.monotonic()
        after.wait_until(0.0)
        assert time.monotonic() - started > 0.9

        sends._pacers.clear()  # without the hand-over a fresh pacer would have sent at once
        fresh = sends._pacer(uuid.UUID(number_id), 5)
        started = time.monotonic()
        fresh.wait_until(0.0)
        assert time.monotonic() - started < 0.1
    finally:
        sends._pacers.pop(number_id, None)
        get_redis().delete(f"{sends.WINDOW_PREFIX}{number_id}")

