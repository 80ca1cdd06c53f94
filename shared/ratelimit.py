"""The shared send limiter: one atomic Redis script, so every process paces a number together.

It is a GCRA-style slot scheduler: each number keeps the time its next message may leave (its
"theoretical arrival time"). `reserve` books the next slot and answers how long the caller must
wait for it, or refuses when that wait is longer than the caller accepts. Callers that matter more
(an agent's reply) accept a longer wait than bulk traffic, so bulk backs off while replies book
slots ahead of it. Redis' own clock is used, so workers on several hosts agree on time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.redis_client import get_redis, script

KEY_PREFIX = "pytake:ratelimit"

# KEYS[1]: the slot key. ARGV: interval between slots (µs), longest acceptable wait (µs), penalty (µs),
# how many slots (back to back, from the key's next free one, never earlier than now: no burst).
# Returns the wait until the first slot in µs (>= 0) when booked, or -(wait + 1) when it would be too long.
_RESERVE = """
redis.replicate_commands()
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local penalty = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if penalty > 0 then
  tat = math.max(tat, now + penalty)
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  return 0
end
local wait = tat - now
if wait > max_wait then return -(wait + 1) end
local next_tat = tat + interval * tonumber(ARGV[4] or '1')
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return wait
"""

# Stay just under the advertised rate. Meta counts any one-second span; the sends dispatcher's pacer
# (workers/tasks/sends.py) keeps a trip's jitter out of that span, so the slots need little headroom.
HEADROOM = 0.995
NO_WAIT_LIMIT = 2**52  # µs: a batch books its slots whatever the queue ahead of it


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait_seconds: float  # granted: sleep this long, then send; refused: how far the queue reaches


def _script():
    return script(_RESERVE)


@dataclass(frozen=True)
class Slots:
    """`count` slots booked back to back: slot i leaves `first_in + i * interval` seconds after the booking."""

    count: int
    first_in: float
    interval: float


def number_key(number_id: str) -> str:
    return f"{KEY_PREFIX}:number:{number_id}"


def recipient_key(number_id: str, wa_id: str) -> str:
    return f"{KEY_PREFIX}:pair:{number_id}:{wa_id}"


def reserve(key: str, *, rate_per_second: float, max_wait_seconds: float) -> Reservation:
    """Book the next slot of `key`, paced at `rate_per_second`, if it comes within `max_wait_seconds`."""
    interval = 1_000_000 / (rate_per_second * HEADROOM)
    result = int(_script()(keys=[key], args=[int(interval), int(max_wait_seconds * 1_000_000), 0]))
    if result >= 0:
        return Reservation(True, result / 1_000_000)
    return Reservation(False, (-result - 1) / 1_000_000)


def reserve_many(key: str, *, count: int, rate_per_second: float) -> Slots:
    """Book the next `count` slots of `key` in one round trip (a dispatcher's batch)."""
    interval = 1_000_000 / (rate_per_second * HEADROOM)
    wait = int(_script()(keys=[key], args=[int(interval), NO_WAIT_LIMIT, 0, int(count)]))
    return Slots(count, wait / 1_000_000, int(interval) / 1_000_000)


def hold(key: str, *, seconds: float) -> None:
    """Nothing leaves on `key` for `seconds` (Meta said slow down): every process sees it at once."""
    _script()(keys=[key], args=[0, 0, int(seconds * 1_000_000)])


def blocked_for(key: str) -> float:
    """How long until `key`'s next slot, without booking one (0 when it is free now)."""
    return blocked_for_many([key])[key]


def blocked_for_many(keys: list[str]) -> dict[str, float]:
    """`blocked_for` of many keys in one round trip (a batch's recipients)."""
    if not keys:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    pipe.time()
    pipe.mget(keys)
    (seconds, micros), tats = pipe.execute()
    now = seconds * 1_000_000 + micros
    return {key: 0.0 if tat is None else max(0.0, (int(tat) - now) / 1_000_000) for key, tat in zip(keys, tats)}


# -- adaptive pace --------------------------------------------------------------------------------
# Meta's 130429 says the number went faster than Meta will take now (its real throughput can sit under
# the advertised one). Each 130429 takes 30% off the number's pace, down to a floor; the pace then climbs
# back to full over PACE_RECOVERY_SECONDS. A lone 130429 costs about 3 s of sending; a storm of them brings
# the pace to the floor at once. Every dispatcher and drip reads the same factor.
PACE_SLOWDOWN = 0.7
PACE_FLOOR = 0.1
PACE_RECOVERY_SECONDS = 20.0


def pace_key(number_id: str) -> str:
    return f"{KEY_PREFIX}:pace:{number_id}"


def _factor(raw: bytes | str | None, now: float) -> float:
    if raw is None:
        return 1.0
    value, since = (float(part) for part in (raw.decode() if isinstance(raw, bytes) else raw).split("|"))
    return min(1.0, value + (1.0 - value) * max(0.0, now - since) / PACE_RECOVERY_SECONDS)


def pace_factor(number_id: str) -> float:
    """The share of its throughput the number may use now (1.0 unless Meta pushed back lately)."""
    return _factor(get_redis().get(pace_key(number_id)), time.time())


def slow_down(number_id: str) -> float:
    """Meta answered 130429: slow the number's pace (from where it is now); the new factor."""
    redis, now = get_redis(), time.time()
    factor = max(PACE_FLOOR, _factor(redis.get(pace_key(number_id)), now) * PACE_SLOWDOWN)
    redis.set(pace_key(number_id), f"{factor}|{now}", ex=int(PACE_RECOVERY_SECONDS) + 5)
    return factor

