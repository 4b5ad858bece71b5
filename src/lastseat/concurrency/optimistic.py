"""`optimistic`: read with a version, write only if the version is unchanged, else retry.

    A: SELECT status, version -> available, v3     B: SELECT -> available, v3
    A: UPDATE ... WHERE version = 3 -> 1 row (v4)
                                                    B: UPDATE ... WHERE version = 3 -> 0 rows
                                                    B: conflict: back off, read again -> sold

No lock is held while the buyer "pays"; the price is wasted work under contention. Retries are
bounded with full-jitter backoff; running out gives RetriesExhaustedError ("conflict, try
again"), never a crash and never a second sale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import (
    Read,
    StrategyBase,
    is_free,
    read_claim,
    refusal,
    seat_versions,
)
from lastseat.concurrency.retry import VersionConflictError
from lastseat.domain.holds import Claim, SeatClaim
from lastseat.service.ports import InventoryTx, Stage, Store

T = TypeVar("T")


class OptimisticStrategy(StrategyBase):
    """Version-checked writes with bounded, jittered retries."""

    name = "optimistic"

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Read, pay, write-if-unchanged; retry the whole attempt on a version conflict."""

        def attempt() -> T:
            self._stats.add(attempts=1)
            with store.read() as reader:
                seen = read_claim(reader, claim, now)
                if not is_free(claim, seen):
                    raise refusal(reader, claim)
            self.pause()
            with store.write(self._stats) as tx:
                if not tx.release_lapsed_holds(claim, now):
                    if not _take(tx, claim, hold_id, stage, seen):
                        self._stats.add(conflicts=1)
                        raise VersionConflictError
                    return finish(tx)
            # We expired a lapsed hold and committed that: it moved the versions we read, so
            # read again (rolling the expiry back instead would meet the same hold forever).
            raise VersionConflictError

        return self.retry.run(attempt, on_retry=lambda: self._stats.add(retries=1))


def _take(tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage, seen: Read) -> bool:
    seats, pool = seen
    if isinstance(claim, SeatClaim):
        return tx.claim_seats_if_version(seat_versions(seats), hold_id, stage) == claim.quantity
    assert pool is not None  # is_free() returned True
    return tx.claim_pool_if_version(claim.pool_id, claim.quantity, stage, pool.version) == 1
