"""`atomic`: the check and the write are one conditional statement; the row count decides.

    A: UPDATE seat SET sold-by-A WHERE id = 7 AND status = 'available'   -> 1 row: A wins
    B: UPDATE seat SET sold-by-B WHERE id = 7 AND status = 'available'   -> 0 rows: B refused

There is no moment between check and write for another buyer to slip into, so nothing to retry:
0 rows means sold (or never existed). For a group, fewer rows than seats rolls the whole
transaction back (all or nothing). For a pool: `WHERE held + sold + n <= capacity`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import StrategyBase, refusal
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.ports import InventoryTx, Stage, Store

T = TypeVar("T")


class AtomicStrategy(StrategyBase):
    """One conditional UPDATE per claim; never retries."""

    name = "atomic"

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Claim with a conditional write, then pay and confirm in the same transaction."""
        self._stats.add(attempts=1)
        with store.write(self._stats) as tx:
            tx.release_lapsed_holds(claim, now)
            if not take_if_free(tx, claim, hold_id, stage):
                raise refusal(tx, claim)
            self.pause()
            return finish(tx)


def take_if_free(tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage) -> bool:
    """The conditional write; True if every seat / unit was taken."""
    if isinstance(claim, SeatClaim):
        return tx.claim_seats_if_free(claim.seat_ids, hold_id, stage) == claim.quantity
    return tx.claim_pool_if_room(claim.pool_id, claim.quantity, stage) == 1
