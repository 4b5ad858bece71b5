"""What every strategy shares: statistics, the check of a read, and the failure verdict.

Best available ("any 2 seats in section A") is resolved the same way by every strategy unless
it knows better (`row-lock-skip-locked` does): pick free seats in a read, then claim exactly
those seats as a SeatClaim with the strategy's own guard. Another buyer may take a picked seat
in between::

    A: pick -> 3, 4                    B: pick -> 4, 5
    A: claim 3, 4 -> ok
                                       B: claim 4, 5 -> unavailable: pick again -> 5, 6

so a refusal of the picked seats is a conflict, retried with a fresh pick (bounded, jittered);
only a pick that finds too few free seats says "unavailable".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from lastseat.concurrency.retry import RetryPolicy, VersionConflictError
from lastseat.domain.errors import NotFoundError, UnavailableError
from lastseat.domain.holds import Claim, ClaimRequest, PoolClaim, SeatClaim, SectionClaim
from lastseat.service.ports import (
    InventoryTx,
    Pause,
    PoolState,
    ReadTx,
    SeatState,
    Stage,
    Store,
    no_pause,
)
from lastseat.service.statistics import StrategyStatistics

T = TypeVar("T")


class StrategyBase:
    """Holds the counters, the retry policy and the check-to-write pause of every strategy."""

    name = "base"
    guarded = True

    def __init__(self, pause: Pause = no_pause, retry: RetryPolicy | None = None) -> None:
        self.pause = pause
        self.retry = retry or RetryPolicy()
        self._stats = StrategyStatistics()

    def statistics(self) -> StrategyStatistics:
        """Counters since this strategy object was made."""
        return self._stats

    def claim(
        self,
        store: Store,
        claim: Claim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx], T],
    ) -> T:
        """Claim `claim` for `hold_id`, then run `finish` in the same transaction."""
        raise NotImplementedError

    def claim_section(
        self,
        store: Store,
        claim: SectionClaim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx, SeatClaim], T],
    ) -> T:
        """Pick free seats of the section, claim them as specific seats; re-pick if taken."""

        def attempt() -> T:
            try:
                seats = pick_seats(store, claim, now, random.random())
            except UnavailableError:
                self._stats.add(attempts=1)  # a pick that finds too few is a refused attempt
                raise
            try:
                return self.claim(store, seats, stage, hold_id, now, lambda tx: finish(tx, seats))
            except UnavailableError as exc:
                self._stats.add(conflicts=1)
                raise VersionConflictError from exc

        return self.retry.run(attempt, on_retry=lambda: self._stats.add(retries=1))


def pick_seats(store: Store, claim: SectionClaim, now: datetime, start: float) -> SeatClaim:
    """Free seats of the section as a SeatClaim, read now; UnavailableError if too few."""
    with store.read() as reader:
        seat_ids = reader.free_seats(claim, now, start)
        if len(seat_ids) < claim.quantity:
            raise refusal(reader, claim)
    return claim.resolved(tuple(seat_ids))


Read = tuple[list[SeatState], PoolState | None]


def read_claim(reader: ReadTx, claim: Claim, now: datetime) -> Read:
    """The current state of what the claim names (its seats, or its pool)."""
    if isinstance(claim, SeatClaim):
        return reader.read_seats(claim.seat_ids, now), None
    return [], reader.read_pool(claim.pool_id, now)


def is_free(claim: Claim, read: Read) -> bool:
    """True if the read shows everything the claim needs as free."""
    seats, pool = read
    if isinstance(claim, SeatClaim):
        return len(seats) == claim.quantity and all(s.status == "available" for s in seats)
    return pool is not None and pool.free >= claim.quantity


def refusal(reader: ReadTx, claim: ClaimRequest) -> Exception:
    """NotFoundError if the claim names inventory that does not exist, else UnavailableError."""
    missing = reader.missing_inventory(claim)
    if missing:
        kind = {PoolClaim: "pool", SectionClaim: "section"}.get(type(claim), "seat")
        return NotFoundError(f"no such {kind} in event {claim.event_id}: {', '.join(missing[:3])}")
    if isinstance(claim, PoolClaim):
        return UnavailableError(f"pool {claim.pool_id} has fewer than {claim.quantity} left")
    if isinstance(claim, SectionClaim):
        return UnavailableError(
            f"section {claim.section} has fewer than {claim.quantity} free seat(s)"
        )
    return UnavailableError(f"{claim.quantity} seat(s) asked for are not all available")


def write_over(tx: InventoryTx, claim: Claim, hold_id: str, stage: Stage, seen: Read) -> None:
    """Write the claim from an earlier read, unguarded: `naive` always, `row-lock` under lock."""
    if isinstance(claim, SeatClaim):
        tx.write_seats(claim.seat_ids, hold_id, stage)
        return
    pool = seen[1]
    assert pool is not None  # the caller's is_free() check passed
    counted = pool.held if stage is Stage.HELD else pool.sold
    tx.write_pool(claim.pool_id, stage, counted + claim.quantity)


def seat_versions(seats: Sequence[SeatState]) -> dict[str, int]:
    """Seat id -> version seen, for a version-checked write."""
    return {s.seat_id: s.version for s in seats}
