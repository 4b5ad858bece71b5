"""`RedlockManager`: the published Redlock algorithm over N >= 3 independent Redis servers.

It prevents the same interleaving as `RedisLockManager` (two app servers reading "available"
and both selling), and survives the loss of a minority of servers::

    A: lock on r1 r2 (r3 down) -> granted, 2 of 3
    B: lock on r1? held. r2? held. r3 down -> 0 of 3, not granted

Acquire (per attempt, one random owner): run the single-node SET NX PX + INCR script on every
server in turn; the lock is granted when a majority said yes and the time left, validity =
ttl - elapsed - drift (drift = ttl * 1 % + 2 ms), is positive; otherwise delete it everywhere
(also where the answer was lost) and retry after a short full-jitter sleep. The grant's
`ttl_ms` is that validity: what the holder may count on, not what it asked for.

Fencing tokens. Each server's script returns its own counter, and the counters drift apart
(failed attempts increment the servers they did reach). The plain maximum of the majority's
counters is therefore NOT monotonic: 50 failed attempts that reach only r1 leave r1 = 50,
r2 = r3 = 0; A then wins r1 r2 with max 51; B later wins r2 r3 with max 2. So a second phase
raises the counter on each server of the majority to the token, while this owner still holds
the lock there (`RAISE_FENCE`), and the grant needs a majority for both phases. Any later
majority shares a server with ours, whose counter is then >= our token, so its INCR is larger.
That argument holds only as long as the servers keep their counters: a server restarted
without persistence (appendfsync always) forgets them, and may also forget the lock itself and
grant it again (Redlock's own answer is to keep a restarted server out for longer than the
longest TTL). Redlock's fencing is weaker than ZooKeeper's; storage-side fencing
(`InventoryTx.check_fence`) is the real guard, here as for every lock.

Implemented here on redis-py rather than taken from a library: the Redlock libraries on PyPI
do not issue fencing tokens (and several are unmaintained), and the algorithm is short.
Servers are asked one after another with a short per-server timeout; with a down server that
refuses connections this costs nothing, with an unreachable one up to the timeout.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence

import redis

from lastseat.adapters.locks import redis_scripts as rs
from lastseat.adapters.locks.lease_watchdog import LeaseWatchdog
from lastseat.domain.errors import LockServiceError, LockTimeoutError, ValidationError
from lastseat.service.locking import Grant, LockStatistics

NODE_TIMEOUT_S = 0.25
DRIFT_FACTOR = 0.01
DRIFT_MIN_MS = 2.0


class _Node:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.client: redis.Redis = rs.connect(url, timeout_s)
        self.acquire = self.client.register_script(rs.ACQUIRE)
        self.raise_fence = self.client.register_script(rs.RAISE_FENCE)
        self.release = self.client.register_script(rs.RELEASE)
        self.extend = self.client.register_script(rs.EXTEND)


class RedlockManager:
    """Locks granted by a majority of independent Redis servers."""

    name = "redlock"

    def __init__(
        self,
        urls: Sequence[str],
        *,
        watchdog: bool = False,
        node_timeout_s: float = NODE_TIMEOUT_S,
    ) -> None:
        if len(urls) < 3:
            raise ValidationError("Redlock needs at least 3 independent Redis servers")
        self._nodes = [_Node(url, node_timeout_s) for url in urls]
        self.quorum = len(urls) // 2 + 1
        self._stats = LockStatistics()
        self._watchdog = (
            LeaseWatchdog(self._renew, self._count_lost, self.name) if watchdog else None
        )

    def acquire(self, resource: str, ttl_ms: int, timeout_s: float) -> Grant:
        """Wait up to `timeout_s` for a majority, retrying with short full-jitter sleeps."""
        started_ns = time.monotonic_ns()
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while (grant := self.acquire_nowait(resource, ttl_ms)) is None:
            if time.monotonic() >= deadline:
                self._stats.add(timeouts=1, waits=1, wait_ns=time.monotonic_ns() - started_ns)
                raise LockTimeoutError(f"{resource}: no majority within {timeout_s} s")
            rs.jitter_sleep(attempt, deadline)
            attempt += 1
        if attempt:
            self._stats.add(waits=1, wait_ns=time.monotonic_ns() - started_ns)
        return grant

    def acquire_nowait(self, resource: str, ttl_ms: int) -> Grant | None:
        """One Redlock attempt: the grant, None if the lock is held, LockServiceError if fewer
        than a majority of servers answered."""
        owner = secrets.token_hex(16)
        keys = [rs.lock_key(resource), rs.fence_key(resource)]
        started = time.monotonic()
        answers = self._on_each(lambda node: rs.run(node.acquire, keys, [owner, ttl_ms]))
        granted = {i: token for i, token in answers.items() if token}
        if len(granted) >= self.quorum:
            token = max(granted.values())
            raised = self._on_each(
                lambda node: rs.run(node.raise_fence, keys, [owner, token]), granted
            )
            validity_ms = self._validity_ms(ttl_ms, started)
            if sum(raised.values()) >= self.quorum and validity_ms > 0:
                grant = Grant(resource, token, owner, int(validity_ms))
                self._stats.add(acquired=1)
                if self._watchdog is not None:
                    self._watchdog.watch(grant)
                return grant
        self._delete_everywhere(resource, owner)
        if len(answers) < self.quorum:
            raise LockServiceError(f"redlock: only {len(answers)} of {len(self._nodes)} answered")
        return None

    def release(self, grant: Grant) -> bool:
        """Delete the lock everywhere; True if a majority still held it for this grant."""
        if self._watchdog is not None:
            self._watchdog.forget(grant)
        deleted = self._delete_everywhere(grant.resource, grant.owner)
        self._stats.add(**({"released": 1} if deleted >= self.quorum else {"release_not_owner": 1}))
        return deleted >= self.quorum

    def extend(self, grant: Grant, ttl_ms: int) -> bool:
        """Extend on a majority within the new validity; False, and the grant lost, otherwise."""
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
        """Stop the watchdog and close every connection."""
        if self._watchdog is not None:
            self._watchdog.close()
        for node in self._nodes:
            node.client.close()

    # -- internals ------------------------------------------------------------------------

    def _on_each(self, call: _NodeCall, only: dict[int, int] | None = None) -> dict[int, int]:
        """Each answering server's integer answer, by index; unreachable servers are left out."""
        answers: dict[int, int] = {}
        for i, node in enumerate(self._nodes):
            if only is not None and i not in only:
                continue
            try:
                answers[i] = call(node)
            except LockServiceError:
                continue
        if not answers and only is None:
            raise LockServiceError(f"redlock: none of {len(self._nodes)} servers answered")
        return answers

    def _delete_everywhere(self, resource: str, owner: str) -> int:
        key = [rs.lock_key(resource)]
        answers = self._on_each(lambda node: rs.run(node.release, key, [owner]))
        return sum(answers.values())

    def _extend_owned(self, grant: Grant, ttl_ms: int) -> bool:
        key = [rs.lock_key(grant.resource)]
        started = time.monotonic()
        answers = self._on_each(lambda node: rs.run(node.extend, key, [grant.owner, ttl_ms]))
        if sum(answers.values()) >= self.quorum and self._validity_ms(ttl_ms, started) > 0:
            self._stats.add(extended=1)
            return True
        return False

    def _validity_ms(self, ttl_ms: int, started: float) -> float:
        elapsed_ms = (time.monotonic() - started) * 1000
        return ttl_ms - elapsed_ms - (ttl_ms * DRIFT_FACTOR + DRIFT_MIN_MS)

    def _renew(self, grant: Grant) -> bool:
        return self._extend_owned(grant, grant.ttl_ms)

    def _count_lost(self, grant: Grant) -> None:
        self._stats.add(lost=1)


_NodeCall = Callable[[_Node], int]
