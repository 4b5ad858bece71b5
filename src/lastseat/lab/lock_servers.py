"""Throwaway lock services for a race: one Redis, three Redis (Redlock), or one ZooKeeper.

Started only for the strategies that need them, on free 127.0.0.1 ports, and removed after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from lastseat.adapters.locks.redis_server import ThrowawayRedis
from lastseat.adapters.locks.zookeeper_server import ThrowawayZooKeeper
from lastseat.bootstrap import LockServices

REDLOCK_SERVERS = 3


@contextmanager
def lock_services_for(strategy: str) -> Iterator[LockServices]:
    """The lock services `strategy` needs, running until the block ends."""
    with ExitStack() as stack:
        if strategy == "redis-lock":
            yield LockServices(redis_url=stack.enter_context(ThrowawayRedis()).url)
        elif strategy == "redlock":
            servers = [stack.enter_context(ThrowawayRedis()) for _ in range(REDLOCK_SERVERS)]
            yield LockServices(redlock_urls=tuple(s.url for s in servers))
        elif strategy == "zk-lock":
            yield LockServices(zk_hosts=stack.enter_context(ThrowawayZooKeeper()).hosts)
        else:
            yield LockServices()
