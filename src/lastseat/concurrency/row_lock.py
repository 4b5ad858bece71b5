"""`row-lock`: pessimistic. Lock first, then check, then write; others wait for the lock.

    A: BEGIN IMMEDIATE (lock)              B: BEGIN IMMEDIATE ... waits
    A: SELECT -> available; pay; UPDATE; COMMIT (unlock)
                                           B: (lock) SELECT -> sold: refused

On SQLite the lock is the database-wide write lock of BEGIN IMMEDIATE; on PostgreSQL it is
`SELECT ... FOR UPDATE` on the claimed rows, taken in seat-id order so that two groups that
overlap cannot deadlock (both lock the lowest shared seat first).

Three modes say what the second buyer does while the first holds the row (PostgreSQL):

- `wait` (`row-lock`): queue for it, up to the session's `lock_timeout`, then
  LockTimeoutError. Correct and patient; a slow payer makes everyone behind it slow.
- `nowait` (`row-lock-nowait`): `FOR UPDATE NOWAIT` fails at once with LockNotAvailableError
  (a conflict: "someone is buying it right now, try again"), holding no connection hostage::

      A: SELECT ... FOR UPDATE -> locked; pay ...
                                           B: SELECT ... FOR UPDATE NOWAIT -> 55P03: conflict

- `skip-locked` (`row-lock-skip-locked`): for best-available claims (SectionClaim), take
  *other* free seats instead of queueing: `FOR UPDATE SKIP LOCKED` from a random seat of the
  section (see adapters/postgres/sections.py for why random)::

      A: lock any 2 free of section A -> 7, 8; pay ...
                                           B: lock any 2 free, skipping locked -> 9, 10; pay

  A seat someone else is paying for right now counts as taken, so B may hear "unavailable"
  for a section whose last seats A then fails to pay for. Claims of named seats or pool units
  have nothing to skip to and wait as in `wait` mode.

Lapsed holds are looked for *after* the lock, never before the wait for it. A hold that
another buyer commits while we queue is invisible to a look taken before the wait, yet the read
after the wait counts its units as free once it has lapsed by our clock::

    A: lock pool; hold 2 units (ttl 1 s) ...         B: look for lapsed holds -> none
                                                     B: lock pool ... waits
    A: COMMIT                                        B: (lock) read: A's 2 units lapsed, free
                                                     B: held = 0 + 1, A's hold still active

and the next expiry of A's hold gives its units back a second time (`held` below zero, the
CHECK refuses, the pool wedges). Under the lock the look sees everything committed, expires
what has lapsed, and nobody can commit a new hold on these rows before our write.

Lock timeouts and NOWAIT refusals are counted as conflicts; neither is retried here (the
buyer decides whether to try again). On SQLite every mode is BEGIN IMMEDIATE: the wait for
the one database lock happens before any row is named, and picking is a plain selection.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Literal, TypeVar

from lastseat.concurrency.base import StrategyBase, is_free, read_claim, refusal, write_over
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.errors import LockNotAvailableError, LockTimeoutError, ValidationError
from lastseat.domain.holds import Claim, SeatClaim, SectionClaim
from lastseat.service.ports import InventoryTx, Pause, Stage, Store, no_pause

T = TypeVar("T")
RowLockMode = Literal["wait", "nowait", "skip-locked"]
MODE_NAMES: dict[RowLockMode, str] = {
    "wait": "row-lock",
    "nowait": "row-lock-nowait",
    "skip-locked": "row-lock-skip-locked",
}


class RowLockStrategy(StrategyBase):
    """Lock the claimed rows (waiting, not waiting, or skipping), check, pay, write."""

    name = "row-lock"

    def __init__(
        self,
        pause: Pause = no_pause,
        mode: RowLockMode = "wait",
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(pause, retry)
        if mode not in MODE_NAMES:
            raise ValidationError(f"row-lock mode must be one of {', '.join(MODE_NAMES)}")
        self.mode: RowLockMode = mode
        self.name = MODE_NAMES[mode]

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
        try:
            return self._under_lock(store, claim, stage, hold_id, now, finish)
        except (LockNotAvailableError, LockTimeoutError):
            self._stats.add(conflicts=1)
            raise

    def _under_lock(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        with store.write(self._stats) as tx:
            self._lock(tx, claim)
            tx.release_lapsed_holds(claim, now)  # only now: see "after the lock" above
            seen = read_claim(tx, claim, now)
            if not is_free(claim, seen):
                raise refusal(tx, claim)
            self.pause()
            write_over(tx, claim, hold_id, stage, seen)
            return finish(tx)

    def claim_section(
        self,
        store: Store,
        claim: SectionClaim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx, SeatClaim], T],
    ) -> T:
        """Best available: skip-locked picks and locks in one statement; other modes re-pick."""
        if self.mode != "skip-locked":
            return super().claim_section(store, claim, stage, hold_id, now, finish)
        self._stats.add(attempts=1)
        with store.write(self._stats) as tx:
            tx.release_lapsed_holds(claim, now)
            seat_ids = tx.lock_free_seats(claim, random.random())
            if len(seat_ids) < claim.quantity:
                raise refusal(tx, claim)
            seats = claim.resolved(tuple(seat_ids))
            self.pause()
            tx.write_seats(seats.seat_ids, hold_id, stage)
            return finish(tx, seats)

    def _lock(self, tx: InventoryTx, claim: Claim) -> None:
        nowait = self.mode == "nowait"
        if isinstance(claim, SeatClaim):
            tx.lock_seats(claim.seat_ids, nowait=nowait)
        else:
            tx.lock_pool(claim.pool_id, nowait=nowait)
