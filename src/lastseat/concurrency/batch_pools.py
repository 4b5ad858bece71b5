"""One counter update per pool for a whole batch (`batched`).

The claims on a GA pool in one batch do not each run the conditional
`UPDATE pools SET sold = sold + n WHERE held + sold + n <= capacity` (a round trip and a new
row version each). The batch locks the pool's row before its first step, reads the counters,
hands units out in memory claim by claim, and writes each counter's sum with one conditional
UPDATE before COMMIT::

    BEGIN  lock pool, read held/sold  [a: 2 units] [b: 1 unit] [c: 4, no room: refused]
           UPDATE pools SET sold = sold + 3 WHERE held + sold + 3 <= capacity  COMMIT

The row stays locked from the read to COMMIT, so no other transaction can take the units
handed out. The lock is taken outside every claim's savepoint: a lock taken inside one would
end when that claim's step is rolled back. A claim whose step fails gives its units back
before the next step asks. Lapsed holds are expired (outside any step, so they stay expired)
only when a claim does not fit. The final UPDATE is still conditional, so a mistake here
fails the batch instead of overselling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Protocol

from lastseat.domain.errors import StoreError
from lastseat.domain.holds import Claim, PoolClaim
from lastseat.service.ports import InventoryTx, Stage

# read_pool counts holds that lapsed by `now` as free; at a time before every expiry it
# reads the counters as stored, which is what the final conditional UPDATE checks against.
_BEFORE_EVERY_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)

Reserve = Callable[[PoolClaim, Stage], bool]


class StepTx(InventoryTx, Protocol):
    """A write transaction with steps (both stores' transactions have them)."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A step: if the block raises, only its writes are undone."""
        ...


class PoolCounters:
    """The free units of the batch's pools, locked and read once; written once at the end."""

    def __init__(self, tx: StepTx, claims: list[Claim]) -> None:
        self._tx = tx
        self._free: dict[str, int] = {}
        self._taken: Counter[tuple[str, Stage]] = Counter()
        for pool_id in sorted({c.pool_id for c in claims if isinstance(c, PoolClaim)}):
            tx.lock_pool(pool_id)
            self._free[pool_id] = self._stored_free(pool_id)

    @contextmanager
    def reserving(self) -> Iterator[Reserve]:
        """A step's way to take units; what it took is given back if the step fails."""
        taken: list[tuple[PoolClaim, Stage]] = []

        def reserve(claim: PoolClaim, stage: Stage) -> bool:
            if self._free.get(claim.pool_id, 0) < claim.quantity:
                return False
            self._move(claim, stage, claim.quantity)
            taken.append((claim, stage))
            return True

        try:
            yield reserve
        except BaseException:
            for claim, stage in taken:
                self._move(claim, stage, -claim.quantity)
            raise

    def make_room(self, claim: PoolClaim, now: datetime) -> None:
        """Expire the pool's lapsed holds (they stay expired whatever the claim's fate)."""
        with self._tx.savepoint():
            if self._tx.release_lapsed_holds(claim, now):
                handed_out = sum(n for (p, _), n in self._taken.items() if p == claim.pool_id)
                self._free[claim.pool_id] = self._stored_free(claim.pool_id) - handed_out

    def write(self) -> None:
        """Add what the batch handed out to the pools' counters: one UPDATE per counter."""
        for (pool_id, stage), units in sorted(self._taken.items()):
            if units and self._tx.claim_pool_if_room(pool_id, units, stage) != 1:
                raise StoreError(f"pool {pool_id} changed under the batch's lock")

    def _move(self, claim: PoolClaim, stage: Stage, units: int) -> None:
        self._free[claim.pool_id] -= units
        self._taken[claim.pool_id, stage] += units

    def _stored_free(self, pool_id: str) -> int:
        state = self._tx.read_pool(pool_id, _BEFORE_EVERY_EXPIRY)
        return 0 if state is None else state.free
