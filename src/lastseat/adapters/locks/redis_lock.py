"""`RedisLockManager`: a lock on one Redis server, with a fencing token issued in the same step.

The interleaving it prevents, two app servers selling one seat::

    A: read seat 7: available          B: read seat 7: available
    A: write seat 7 sold to A          B: write seat 7 sold to B     # two tickets

With the lock, B's read waits until A has written and released. The lock is one key,
`SET lastseat:lock:{seat} <random owner> NX PX <ttl>`; in the same Lua script, and only when the
SET succeeded, `INCR lastseat:fence:{seat}` (a counter that never expires) returns the grant's
fencing token. Release and extend are compare-and-delete / compare-and-extend scripts, so a
holder whose lock expired can never delete or prolong the next owner's lock.

What this lock cannot promise, plainly: a Redis failover to a replica that had not received
the SET, or a restart without persistence, forgets the lock and can hand it out twice while the
first holder still works -- and a restart without persistence also forgets the fence counter,
so tokens may repeat. A holder paused past its TTL is in the same place. Data stays safe only
because storage refuses a write whose token is not newer than the last one it accepted for the
resource (`InventoryTx.check_fence`); the conditional seat update underneath is the last check.
"""

from __future__ import annotations

import secrets
import time

from lastseat.adapters.locks import redis_scripts as rs
from lastseat.adapters.locks.lease_watchdog import LeaseWatchdog
from lastseat.domain.errors import LockTimeoutError
from lastseat.service.locking import Grant, LockStatistics


class RedisLockManager:
    """Locks on one Redis server; `watchdog=True` keeps grants alive until released or lost."""

    name = "redis-lock"

    def __init__(
        self, url: str, *, watchdog: bool = False, command_timeout_s: float = rs.COMMAND_TIMEOUT_S
    ) -> None:
        self._client = rs.connect(url, command_timeout_s)
        self._acquire_script = self._client.register_script(rs.ACQUIRE)
        self._release_script = self._client.register_script(rs.RELEASE)
        self._extend_script = self._client.register_script(rs.EXTEND)
        self._stats = LockStatistics()
        self._watchdog = (
            LeaseWatchdog(self._renew, self._count_lost, self.name) if watchdog else None
        )

    def acquire(self, resource: str, ttl_ms: int, timeout_s: float) -> Grant:
        """Wait up to `timeout_s` for the lock, retrying with short full-jitter sleeps."""
        started_ns = time.monotonic_ns()
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while (grant := self.acquire_nowait(resource, ttl_ms)) is None:
            if time.monotonic() >= deadline:
                self._stats.add(timeouts=1, waits=1, wait_ns=time.monotonic_ns() - started_ns)
                raise LockTimeoutError(f"{resource}: lock not granted within {timeout_s} s")
            rs.jitter_sleep(attempt, deadline)
            attempt += 1
        if attempt:
            self._stats.add(waits=1, wait_ns=time.monotonic_ns() - started_ns)
        return grant

    def acquire_nowait(self, resource: str, ttl_ms: int) -> Grant | None:
        """The lock and its fencing token, or None if someone holds it."""
        owner = secrets.token_hex(16)
        keys = [rs.lock_key(resource), rs.fence_key(resource)]
        token = rs.run(self._acquire_script, keys, [owner, ttl_ms])
        if not token:
            return None
        grant = Grant(resource, token, owner, ttl_ms)
        self._stats.add(acquired=1)
        if self._watchdog is not None:
            self._watchdog.watch(grant)
        return grant

    def release(self, grant: Grant) -> bool:
        """Delete the lock if the grant still owns it; False (and untouched) otherwise."""
        if self._watchdog is not None:
            self._watchdog.forget(grant)
        deleted = rs.run(self._release_script, [rs.lock_key(grant.resource)], [grant.owner])
        self._stats.add(**({"released": 1} if deleted else {"release_not_owner": 1}))
        return bool(deleted)

    def extend(self, grant: Grant, ttl_ms: int) -> bool:
        """Give a still-owned lock a new TTL; False, and the grant marked lost, otherwise."""
        if self._extend_owned(grant, ttl_ms):
            return True
        if self._watchdog is not None:
            self._watchdog.forget(grant)
        grant.lost.set()
        self._count_lost(grant)
        return False

    def statistics(self) -> LockStatistics:
        """The counters so far."""
        return self._stats

    def close(self) -> None:
        """Stop the watchdog and close the connections."""
        if self._watchdog is not None:
            self._watchdog.close()
        self._client.close()

    def _extend_owned(self, grant: Grant, ttl_ms: int) -> bool:
        extended = rs.run(self._extend_script, [rs.lock_key(grant.resource)], [grant.owner, ttl_ms])
        if extended:
            self._stats.add(extended=1)
        return bool(extended)

    def _renew(self, grant: Grant) -> bool:
        return self._extend_owned(grant, grant.ttl_ms)

    def _count_lost(self, grant: Grant) -> None:
        self._stats.add(lost=1)
