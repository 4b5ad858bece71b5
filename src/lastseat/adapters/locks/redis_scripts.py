"""What the Redis lock managers share: key names, the Lua scripts, client settings, and the one
place where redis-py's exceptions become ours.

Each script runs atomically on one server, so "set the lock and issue its fencing token" is a
single step: no client can see the lock granted without its token, or a token without a grant.
Both keys carry the resource as a hash tag, so they live in one slot if a cluster is ever used.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lastseat.domain.errors import LockServiceError

CONNECT_TIMEOUT_S = 0.5
COMMAND_TIMEOUT_S = 2.0
BACKOFF_BASE_S = 0.001
BACKOFF_CAP_S = 0.025

# KEYS: lock, fence. ARGV: owner, ttl_ms. The token, or 0 when someone else holds the lock.
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('INCR', KEYS[2])
end
return 0
"""

# KEYS: lock. ARGV: owner. 1 when the caller's lock was deleted, 0 when it was not the owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lock. ARGV: owner, ttl_ms. 1 when the caller's lock got a new TTL, 0 when not the owner.
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock, fence. ARGV: owner, token. Raises the counter to at least the token, only while
# the caller still holds the lock on this server (Redlock's second phase).
RAISE_FENCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if seen < tonumber(ARGV[2]) then
    redis.call('SET', KEYS[2], ARGV[2])
end
return 1
"""


def lock_key(resource: str) -> str:
    """The key that holds the lock's owner while it is held (it expires with the TTL)."""
    return f"lastseat:lock:{{{resource}}}"


def fence_key(resource: str) -> str:
    """The key of the resource's fencing counter; it never expires."""
    return f"lastseat:fence:{{{resource}}}"


def connect(url: str, timeout_s: float = COMMAND_TIMEOUT_S) -> redis.Redis:
    """A client that fails fast when the server is down (one immediate retry, for a pooled
    connection the server closed, e.g. after a restart)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=min(CONNECT_TIMEOUT_S, timeout_s),
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        retry_on_timeout=False,
    )


def run(script: Any, keys: list[str], args: list[str | int]) -> int:
    """Run a registered script and return its integer answer, translating driver errors."""
    with translated():
        return int(script(keys=keys, args=args))


@contextmanager
def translated() -> Iterator[None]:
    """Turn redis-py's errors into LockServiceError (the server is down, slow, or refused)."""
    try:
        yield
    except redis.RedisError as error:
        raise LockServiceError(f"redis: {type(error).__name__}: {error}") from error


def jitter_sleep(attempt: int, deadline: float) -> None:
    """Sleep a full-jitter backoff for the attempt, never past the deadline (monotonic)."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
    time.sleep(max(0.0, min(random.uniform(0, ceiling), deadline - time.monotonic())))
