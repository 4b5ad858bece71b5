"""`pg-advisory`: PostgreSQL advisory locks taken inside the writing transaction.

    A: BEGIN; pg_advisory_xact_lock(seat 7); read -> free; pay; fence; write; COMMIT (unlock)
    B: BEGIN; pg_advisory_xact_lock(seat 7) ... waits ... (lock) read -> sold: refused

The lock is fate-shared with the write: it ends with the transaction (COMMIT, ROLLBACK, or the
connection dying), never by a timer, so a paused holder cannot lose it while it can still
write — the stale-holder case of the Redis and ZooKeeper locks does not arise. The token is
drawn from a sequence while the locks are held and fenced like every other lock's. On SQLite
the database write lock of BEGIN IMMEDIATE plays the advisory lock's part.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.atomic import take_if_free
from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal
from lastseat.concurrency.locked import resources_of
from lastseat.domain.holds import Claim
from lastseat.service.ports import InventoryTx, Stage, Store

T = TypeVar("T")


class AdvisoryLockStrategy(StrategyBase):
    """Advisory locks in global order, then check, pay, fence and write in one transaction."""

    name = "pg-advisory"

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Lock, check, pay, fence and write; the locks end with the transaction."""
        self._stats.add(attempts=1)
        with store.write(self._stats) as tx:
            resources = resources_of(claim)
            token = tx.advisory_lock(resources)
            tx.release_lapsed_holds(claim, now)
            if not is_free(claim, read_claim(tx, claim, now)):
                raise refusal(tx, claim)
            self.pause()
            for resource in resources:
                tx.check_fence(resource, token)
            if not take_if_free(tx, claim, hold_id, stage):
                raise refusal(tx, claim)
            return finish(tx)
