"""`naive`: check, then (pay), then write, with no guard: the last-seat race, on purpose.

The check is an ordinary read outside the write transaction, so two buyers can both pass it::

    A: SELECT status -> available          B: SELECT status -> available
    A: (take money ...)                    B: (take money ...)
    A: UPDATE seat -> sold by A; COMMIT
                                           B: UPDATE seat -> sold by B; COMMIT   # sold twice

For a pool the write is `sold = <value read> + n`, so one of two concurrent sales is a lost
update: both tickets are issued, the counter counts one. Refused unless explicitly allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal, write_over
from lastseat.domain.holds import Claim
from lastseat.service.ports import InventoryTx, Stage, Store

T = TypeVar("T")


class NaiveStrategy(StrategyBase):
    """Unguarded read-check-write; exists to show the race."""

    name = "naive"
    guarded = False

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Check in one transaction, write blindly in another."""
        self._stats.add(attempts=1)
        with store.read() as reader:
            seen = read_claim(reader, claim, now)
            if not is_free(claim, seen):
                raise refusal(reader, claim)
        self.pause()
        with store.write(self._stats) as tx:
            tx.release_lapsed_holds(claim, now)
            write_over(tx, claim, hold_id, stage, seen)
            return finish(tx)
