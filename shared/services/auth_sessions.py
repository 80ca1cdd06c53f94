"""Sign-in sessions in Redis: refresh-token rotation, revocation, and login throttling.

Every sign-in starts a token *family*; its access and refresh tokens carry the family id.
- A refresh token works once: using it marks its id used (SET NX, so two concurrent
  refreshes cannot both win) and issues the next pair in the same family.
- Presenting a used refresh token means it was stolen or replayed: the whole family is
  revoked, so the thief's and the owner's tokens all stop working.
- Logout revokes the family (both tokens) and blocks the access token's id.
Keys expire with the tokens they describe, so the blocklist never grows without bound.
"""

from __future__ import annotations

import redis as redis_lib

from shared.errors import LoginThrottledError, TokenRevokedError

PREFIX = "pytake:auth"

# Login throttling: failures per email and per client address within the window.
FAILURE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


def _family_key(family: str) -> str:
    return f"{PREFIX}:family_revoked:{family}"


def _jti_key(jti: str) -> str:
    return f"{PREFIX}:jti_blocked:{jti}"


def _used_key(jti: str) -> str:
    return f"{PREFIX}:refresh_used:{jti}"


def is_revoked(redis: redis_lib.Redis, *, jti: str, family: str | None) -> bool:
    keys = [_jti_key(jti)] + ([_family_key(family)] if family else [])
    return bool(redis.exists(*keys))


def revoke_family(redis: redis_lib.Redis, *, family: str, ttl_seconds: int) -> None:
    redis.set(_family_key(family), 1, ex=max(1, ttl_seconds))


def block_token(redis: redis_lib.Redis, *, jti: str, ttl_seconds: int) -> None:
    redis.set(_jti_key(jti), 1, ex=max(1, ttl_seconds))


def use_refresh_token(redis: redis_lib.Redis, *, jti: str, family: str, ttl_seconds: int) -> None:
    """Spend a refresh token; a second use revokes its family and raises."""
    first_use = redis.set(_used_key(jti), 1, nx=True, ex=max(1, ttl_seconds))
    if not first_use:
        revoke_family(redis, family=family, ttl_seconds=ttl_seconds)
        raise TokenRevokedError(
            "This refresh token was already used; every session of this sign-in has been signed out",
            details={"reason": "refresh_token_reused"},
        )


def _failure_keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"{PREFIX}:login_failures:email:{email}", MAX_FAILURES_PER_EMAIL)]
    if address:
        keys.append((f"{PREFIX}:login_failures:addr:{address}", MAX_FAILURES_PER_ADDRESS))
    return keys


def check_login_allowed(redis: redis_lib.Redis, *, email: str, address: str | None) -> None:
    for key, limit in _failure_keys(email, address):
        failures = int(redis.get(key) or 0)
        if failures >= limit:
            retry_after = max(1, int(redis.ttl(key)))
            raise LoginThrottledError(
                f"Too many failed sign-ins; try again in {retry_after} seconds", retry_after=retry_after
            )


# INCR, and start the window's clock on the first failure; one atomic step (works on Redis 6 and 7).
_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def record_login_failure(redis: redis_lib.Redis, *, email: str, address: str | None) -> None:
    count = redis.register_script(_COUNT_IN_WINDOW)
    for key, _ in _failure_keys(email, address):
        count(keys=[key], args=[FAILURE_WINDOW_SECONDS])


def reset_login_failures(redis: redis_lib.Redis, *, email: str, address: str | None) -> None:
    redis.delete(*(key for key, _ in _failure_keys(email, address)))
