"""`optimistic`: read with a version, write only if the version is unchanged, else retry.

    A: SELECT status, version -> available, v3     B: SELECT -> available, v3
    A: UPDATE ... WHERE version = 3 -> 1 row (v4)
                                                    B: UPDATE ... WHERE version = 3 -> 0 rows
                                                    B: conflict: back off, read again -> sold

No lock is held while the buyer "pays"; the price is wasted work under contention. Retries are
bounded with full-jitter backoff; running out gives RetriesExhaustedError ("conflict, try
again"), never a crash and never a second sale.

The version-checked write is sent without waiting for its answer, with the sale and the
COMMIT (adapters/postgres/sales.py): the row it locks is held only while the server runs
them. A changed version aborts the whole flight (InventoryTakenError), which is a conflict.
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
from lastseat.domain.errors import InventoryTakenError
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
            try:
                with store.write(self._stats) as tx:
                    if not tx.release_lapsed_holds(claim, now):
                        # Sent with the sale and the COMMIT: a changed version aborts them all.
                        tx.claim_or_abort(claim, hold_id, stage, _versions(claim, seen))
                        return finish(tx)
            except InventoryTakenError as exc:
                self._stats.add(conflicts=1)
                raise VersionConflictError from exc
            # We expired a lapsed hold and committed that: it moved the versions we read, so
            # read again (rolling the expiry back instead would meet the same hold forever).
            raise VersionConflictError

        return self.retry.run(attempt, on_retry=lambda: self._stats.add(retries=1))


def _versions(claim: Claim, seen: Read) -> dict[str, int]:
    """The versions the write must still find: each seat's, or the pool's."""
    seats, pool = seen
    if isinstance(claim, SeatClaim):
        return seat_versions(seats)
    assert pool is not None  # is_free() returned True
    return {claim.pool_id: pool.version}
