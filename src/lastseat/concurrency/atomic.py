"""`atomic`: the check and the write are one conditional statement; the row count decides.

    A: UPDATE seat SET sold-by-A WHERE id = 7 AND status = 'available'   -> 1 row: A wins
    B: UPDATE seat SET sold-by-B WHERE id = 7 AND status = 'available'   -> 0 rows: B refused

There is no moment between check and write for another buyer to slip into, so nothing to retry:
0 rows means sold (or never existed). For a group, fewer rows than seats rolls the whole
transaction back (all or nothing). For a pool: `WHERE held + sold + n <= capacity`.

The claim's row lock is held until COMMIT, so the claim is sent without waiting for its
answer, together with the sale and the COMMIT (adapters/postgres/sales.py): the lock lives as
long as the server takes to run them, never across a client's turn. A claim that comes up
short aborts that transaction by itself (InventoryTakenError) and nothing of it is kept::

    A: [UPDATE pool ... (locks)  sale  COMMIT]          one flight, then the lock is free
    B:        [UPDATE pool ... waits   sale  COMMIT]

Lapsed holds are looked for only when the claim comes up short: on a busy on-sale nearly
every claim finds room, and the search is a round trip each of them would pay. A short claim
expires, in a new transaction, the lapsed holds on its inventory and, only if there were any,
claims again::

    A: [UPDATE ... seats 1, 2 WHERE available  sale  COMMIT]  -> 1 row of 2: aborted
    A: expire lapsed hold of seat 2                            -> seat 2 available
    A: UPDATE ... seats 1, 2 WHERE available                   -> 2 rows: the group is whole
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import StrategyBase, refusal
from lastseat.domain.errors import InventoryTakenError
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.ports import InventoryTx, Stage, Store, no_pause

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
        try:
            with store.write(self._stats) as tx:
                tx.claim_or_abort(claim, hold_id, stage)
                if self.pause is not no_pause:
                    tx.flush()  # the pause stands between a claim that happened and its sale
                    self.pause()
                return finish(tx)
        except InventoryTakenError:
            pass  # nothing was kept; lapsed holds may make room
        with store.write(self._stats) as tx:
            # The claim found no room once the row was its own (it waited for the lock), so
            # without a lapsed hold to give units back there is nothing to try again: a
            # refused buyer does not queue on the hot row a second time.
            if not tx.release_lapsed_holds(claim, now) or not take_if_free(
                tx, claim, hold_id, stage
            ):
                raise refusal(tx, claim)
            self.pause()
            return finish(tx)


def take_if_free(tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage) -> bool:
    """The conditional write; True if every seat / unit was taken."""
    return _take(tx, claim, hold_id, stage) == claim.quantity


def take_making_room(
    tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage, now: datetime
) -> bool:
    """The conditional write, again after expiring lapsed holds if it came up short; True if
    every seat / unit was taken."""
    taken = _take(tx, claim, hold_id, stage)
    if taken < claim.quantity and tx.release_lapsed_holds(claim, now):
        taken += _take(tx, claim, hold_id, stage)
    return taken == claim.quantity


def _take(tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage) -> int:
    """Seats or units taken by one conditional write (a pool's all or none)."""
    if isinstance(claim, SeatClaim):
        return tx.claim_seats_if_free(claim.seat_ids, hold_id, stage)
    return claim.quantity * tx.claim_pool_if_room(claim.pool_id, claim.quantity, stage)
