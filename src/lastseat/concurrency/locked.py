"""Distributed-lock strategies (`redis-lock`, `redlock`, `zk-lock`): a lock service referees
which buyer may touch a seat, and storage fences out writes made under a lost lock.

    A: lock(seat 7) -> token 33;  A: read seat 7 -> free;  A: ... paused past the TTL ...
    B: lock(seat 7) -> token 34;  B: read -> free;  B: fence(seat 7, 34); write; commit
    A: (wakes) fence(seat 7, 33) -> refused: FencedOutError, nothing written

Locks are taken in one global order (seat ids ascending, a pool by its id) so two groups that
overlap cannot deadlock, and released in reverse. Under the fence the write is still the
conditional one (`WHERE status = 'available'`): the final check underneath. `fencing=False`
exists only for tests, to show that a lock alone sells the seat twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.atomic import take_if_free
from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal, write_over
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.errors import FencedOutError, LockServiceError
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.locking import Grant, LockManager
from lastseat.service.ports import InventoryTx, Pause, Stage, Store, no_pause

T = TypeVar("T")
DEFAULT_LOCK_TTL_MS = 10_000
DEFAULT_ACQUIRE_TIMEOUT_S = 10.0


class DistributedLockStrategy(StrategyBase):
    """Lock the claimed resources in a lock service, then read, check and write fenced."""

    def __init__(
        self,
        name: str,
        locks: LockManager,
        pause: Pause = no_pause,
        retry: RetryPolicy | None = None,
        *,
        ttl_ms: int = DEFAULT_LOCK_TTL_MS,
        acquire_timeout_s: float = DEFAULT_ACQUIRE_TIMEOUT_S,
        fencing: bool = True,
    ) -> None:
        super().__init__(pause, retry)
        self.name = name
        self.locks = locks
        self.ttl_ms = ttl_ms
        self.acquire_timeout_s = acquire_timeout_s
        self.fencing = fencing

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Hold the locks across read, pay and write; fence the write with their tokens."""
        self._stats.add(attempts=1)
        grants = self._acquire_all(resources_of(claim))
        try:
            with store.read() as reader:
                seen = read_claim(reader, claim, now)
                if not is_free(claim, seen):
                    raise refusal(reader, claim)
            self.pause()
            with store.write(self._stats) as tx:
                tx.release_lapsed_holds(claim, now)
                if not self.fencing:
                    write_over(tx, claim, hold_id, stage, seen)  # trusts the lock alone
                    return finish(tx)
                self._fence(tx, grants)
                if not take_if_free(tx, claim, hold_id, stage):
                    raise refusal(tx, claim)
                return finish(tx)
        finally:
            self._release_all(grants)

    def _release_all(self, grants: list[Grant]) -> None:
        # A release that cannot reach the lock service must not hide what the buyer was told:
        # the lease ends by itself (TTL, session expiry), which is what leases are for.
        for grant in reversed(grants):
            with contextlib.suppress(LockServiceError):
                self.locks.release(grant)

    def _acquire_all(self, resources: list[str]) -> list[Grant]:
        grants: list[Grant] = []
        started = time.monotonic_ns()
        waits_before = self.locks.statistics().waits
        try:
            for resource in resources:
                grants.append(self.locks.acquire(resource, self.ttl_ms, self.acquire_timeout_s))
        except BaseException:
            self._release_all(grants)
            raise
        if self.locks.statistics().waits > waits_before:
            self._stats.add(lock_waits=1, lock_wait_ns=time.monotonic_ns() - started)
        return grants

    def _fence(self, tx: InventoryTx, grants: list[Grant]) -> None:
        try:
            for grant in grants:
                tx.check_fence(grant.resource, grant.token)
        except FencedOutError:
            self._stats.add(fenced_out=1)
            raise


def resources_of(claim: Claim) -> list[str]:
    """The lock names of a claim, in the global lock order."""
    if isinstance(claim, SeatClaim):
        return list(claim.seat_ids)  # already ascending
    return [claim.pool_id]
