"""The shared send limiter on the real Redis: pacing, priority of agent replies, holds, many callers at once."""

import threading
import time
import uuid

import pytest

from shared import ratelimit
from shared.redis_client import get_redis


@pytest.fixture
def key(settings):
    name = f"{ratelimit.KEY_PREFIX}:test:{uuid.uuid4().hex}"
    yield name
    get_redis().delete(name)


def _interval(rate):
    return 1 / (rate * ratelimit.HEADROOM)


def test_slots_are_spaced_by_the_rate(key):
    waits = [ratelimit.reserve(key, rate_per_second=20, max_wait_seconds=5).wait_seconds for _ in range(5)]
    assert waits[0] == pytest.approx(0, abs=0.005)
    gaps = [b - a for a, b in zip(waits, waits[1:])]
    assert all(gap == pytest.approx(_interval(20), abs=0.01) for gap in gaps)


def test_bulk_traffic_backs_off_while_an_agent_reply_books_ahead(key):
    for _ in range(10):  # the number's next half second is booked
        assert ratelimit.reserve(key, rate_per_second=20, max_wait_seconds=5).granted
    bulk = ratelimit.reserve(key, rate_per_second=20, max_wait_seconds=0.25)
    assert not bulk.granted and bulk.wait_seconds > 0.25
    reply = ratelimit.reserve(key, rate_per_second=20, max_wait_seconds=2)
    assert reply.granted and 0.25 < reply.wait_seconds < 2


def test_a_hold_stops_every_sender_for_its_duration(key):
    ratelimit.hold(key, seconds=1.0)
    assert ratelimit.blocked_for(key) == pytest.approx(1.0, abs=0.05)
    after = ratelimit.reserve(key, rate_per_second=80, max_wait_seconds=5)
    assert after.granted and after.wait_seconds == pytest.approx(1.0, abs=0.05)


def test_concurrent_callers_never_share_a_slot(key):
    rate, per_thread, threads = 200, 50, 4
    booked: list[float] = []
    lock = threading.Lock()

    def book():
        for _ in range(per_thread):
            reservation = ratelimit.reserve(key, rate_per_second=rate, max_wait_seconds=10)
            assert reservation.granted
            with lock:
                booked.append(time.time() + reservation.wait_seconds)

    workers = [threading.Thread(target=book) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    booked.sort()
    gaps = [b - a for a, b in zip(booked, booked[1:])]
    # Each gap is one interval, give or take the time between a reply and its time.time() in another thread.
    assert len(booked) == rate
    assert sum(gaps) == pytest.approx(_interval(rate) * (rate - 1), rel=0.1)
    span = booked[-1] - booked[0]
    assert span / (rate - 1) >= _interval(rate) * 0.9  # never faster than the rate


# reserve_many: a dispatcher books its whole batch in one call -----------------------------------


def test_a_batch_reservation_spaces_its_slots_at_the_rate(key):
    slots = ratelimit.reserve_many(key, count=5, rate_per_second=20)
    assert slots.count == 5
    assert slots.first_in == pytest.approx(0, abs=0.005)  # an idle number sends at once
    assert slots.interval == pytest.approx(_interval(20), abs=1e-5)
    # The whole batch is booked: the next slot anyone gets is after the fifth.
    assert ratelimit.blocked_for(key) == pytest.approx(5 * _interval(20), abs=0.01)


def test_a_second_batch_continues_after_the_first_batchs_slots(key):
    first = ratelimit.reserve_many(key, count=10, rate_per_second=50)
    second = ratelimit.reserve_many(key, count=3, rate_per_second=50)
    assert first.first_in == pytest.approx(0, abs=0.005)
    assert second.first_in == pytest.approx(10 * _interval(50), abs=0.01)  # no slot shared, no gap
    # And a single reservation queues behind both batches.
    single = ratelimit.reserve(key, rate_per_second=50, max_wait_seconds=5)
    assert single.granted and single.wait_seconds == pytest.approx(13 * _interval(50), abs=0.01)


def test_a_batch_after_an_idle_spell_starts_now_not_in_the_past(key):
    ratelimit.reserve_many(key, count=2, rate_per_second=100)  # booked until ~20 ms from now
    time.sleep(0.1)
    later = ratelimit.reserve_many(key, count=4, rate_per_second=100)
    assert later.first_in == pytest.approx(0, abs=0.005)  # unused past slots are not a burst allowance
    assert ratelimit.blocked_for(key) == pytest.approx(4 * _interval(100), abs=0.01)


def test_a_hold_pushes_the_next_batch_back(key):
    ratelimit.reserve_many(key, count=4, rate_per_second=20)  # ~0.2 s booked
    ratelimit.hold(key, seconds=1.0)  # Meta said slow down
    after = ratelimit.reserve_many(key, count=3, rate_per_second=20)
    assert after.first_in == pytest.approx(1.0, abs=0.05)
    assert ratelimit.blocked_for(key) == pytest.approx(1.0 + 3 * _interval(20), abs=0.05)


def test_a_short_hold_never_pulls_booked_slots_earlier(key):
    ratelimit.reserve_many(key, count=40, rate_per_second=20)  # ~2 s booked
    ratelimit.hold(key, seconds=0.2)
    after = ratelimit.reserve_many(key, count=1, rate_per_second=20)
    assert after.first_in == pytest.approx(40 * _interval(20), abs=0.05)


def test_a_130429_slows_the_numbers_pace_for_every_caller_and_it_climbs_back(settings, monkeypatch):
    number_id = uuid.uuid4().hex
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    try:
        assert ratelimit.pace_factor(number_id) == 1.0
        assert ratelimit.slow_down(number_id) == pytest.approx(ratelimit.PACE_SLOWDOWN)
        assert ratelimit.pace_factor(number_id) == pytest.approx(ratelimit.PACE_SLOWDOWN)  # read by anyone
        now[0] += ratelimit.PACE_RECOVERY_SECONDS / 2
        halfway = ratelimit.PACE_SLOWDOWN + (1 - ratelimit.PACE_SLOWDOWN) / 2
        assert ratelimit.pace_factor(number_id) == pytest.approx(halfway)
        for _ in range(20):  # a storm: the floor, not zero
            ratelimit.slow_down(number_id)
        assert ratelimit.pace_factor(number_id) == pytest.approx(ratelimit.PACE_FLOOR)
        now[0] += ratelimit.PACE_RECOVERY_SECONDS
        assert ratelimit.pace_factor(number_id) == 1.0
    finally:
        get_redis().delete(ratelimit.pace_key(number_id))
