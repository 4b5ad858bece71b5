"""Lock-service fixtures: throwaway servers started once per session, never skipped.

Redis: `redis_server` (one server) and `redlock_servers` (three independent servers). Neither
persists anything; tests that kill and restart a server use their own `ThrowawayRedis`, or
restart what they killed, and every test uses fresh keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from lastseat.adapters.locks.redis_server import ThrowawayRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ThrowawayRedis]:
    """One Redis server on a free 127.0.0.1 port for the session."""
    with ThrowawayRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redlock_servers() -> Iterator[list[ThrowawayRedis]]:
    """Three independent Redis servers for Redlock, for the session."""
    with ExitStack() as stack:
        yield [stack.enter_context(ThrowawayRedis()) for _ in range(3)]
