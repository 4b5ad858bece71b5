"""`row-lock`: pessimistic. Lock first, then check, then write; others wait for the lock.

    A: BEGIN IMMEDIATE (lock)              B: BEGIN IMMEDIATE ... waits
    A: SELECT -> available; pay; UPDATE; COMMIT (unlock)
                                           B: (lock) SELECT -> sold: refused

On SQLite the lock is the database-wide write lock of BEGIN IMMEDIATE; on PostgreSQL it is
`SELECT ... FOR UPDATE` on the claimed rows, taken in seat-id order so that two groups that
overlap cannot deadlock (both lock the lowest shared seat first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal, write_over
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.ports import InventoryTx, Stage, Store

T = TypeVar("T")


class RowLockStrategy(StrategyBase):
    """Lock the claimed rows, check, pay, write."""

    name = "row-lock"

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Check and write under the lock, then pay and confirm before releasing it."""
        self._stats.add(attempts=1)
        with store.write(self._stats) as tx:
            tx.release_lapsed_holds(claim, now)
            if isinstance(claim, SeatClaim):
                tx.lock_seats(claim.seat_ids)
            else:
                tx.lock_pool(claim.pool_id)
            seen = read_claim(tx, claim, now)
            if not is_free(claim, seen):
                raise refusal(tx, claim)
            self.pause()
            write_over(tx, claim, hold_id, stage, seen)
            return finish(tx)
