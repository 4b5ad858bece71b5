"""`serializable`: a plain read and an unguarded write, made safe by the isolation level alone.

The code is `naive`'s read-check-write, but inside one SERIALIZABLE transaction. PostgreSQL
lets both buyers read the last seat as free, and then refuses to commit a history that no
serial order could have produced::

    A: BEGIN SERIALIZABLE; SELECT -> available    B: BEGIN SERIALIZABLE; SELECT -> available
    A: UPDATE seat -> sold by A; COMMIT
                                                  B: UPDATE seat ... ERROR 40001: rolled back
                                                  B: (retry) BEGIN; SELECT -> sold: refused

The loser gets SerializationError (SQLSTATE 40001, or 40P01 for a deadlock, translated by the
adapter): nothing of its transaction was kept, so the whole transaction (read, check, pay,
write) runs again under the one retry policy (bounded, full jitter); each abort is counted
as a conflict and each new try as a retry. No lock, version column or conditional write is
needed, which is why the same code runs on PostgreSQL-compatible distributed SQL (which is
SERIALIZABLE by default). The price: under contention most attempts abort (DESIGN.md §9).

On SQLite the same code runs in the store's normal write transaction: BEGIN IMMEDIATE admits
one writer at a time, so every history is already serial and nothing is ever aborted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal, write_over
from lastseat.domain.errors import SerializationError
from lastseat.domain.holds import Claim
from lastseat.service.ports import InventoryTx, Isolation, Stage, Store

T = TypeVar("T")


class SerializableStrategy(StrategyBase):
    """Read, check, pay, write in one SERIALIZABLE transaction; retry it whole when aborted."""

    name = "serializable"

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Claim in one SERIALIZABLE transaction, retried whole on a serialization failure."""

        def attempt() -> T:
            self._stats.add(attempts=1)
            try:
                return self._attempt(store, claim, stage, hold_id, now, finish)
            except SerializationError:
                self._stats.add(conflicts=1)
                raise

        return self.retry.run(attempt, on_retry=lambda: self._stats.add(retries=1))

    def _attempt(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        with store.write(self._stats, isolation=Isolation.SERIALIZABLE) as tx:
            tx.release_lapsed_holds(claim, now)
            seen = read_claim(tx, claim, now)
            if not is_free(claim, seen):
                raise refusal(tx, claim)
            self.pause()
            write_over(tx, claim, hold_id, stage, seen)
            return finish(tx)
