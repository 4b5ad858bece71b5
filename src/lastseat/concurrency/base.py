"""What every strategy shares: statistics, the check of a read, and the failure verdict."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lastseat.domain.errors import NotFoundError, UnavailableError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.service.ports import (
    InventoryTx,
    Pause,
    PoolState,
    ReadTx,
    SeatState,
    Stage,
    no_pause,
)
from lastseat.service.statistics import StrategyStatistics


class StrategyBase:
    """Holds the counters and the check-to-write pause every strategy exposes."""

    name = "base"
    guarded = True

    def __init__(self, pause: Pause = no_pause) -> None:
        self.pause = pause
        self._stats = StrategyStatistics()

    def statistics(self) -> StrategyStatistics:
        """Counters since this strategy object was made."""
        return self._stats


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


def refusal(reader: ReadTx, claim: Claim) -> Exception:
    """NotFoundError if the claim names inventory that does not exist, else UnavailableError."""
    missing = reader.missing_inventory(claim)
    if missing:
        kind = "pool" if isinstance(claim, PoolClaim) else "seat"
        return NotFoundError(f"no such {kind} in event {claim.event_id}: {', '.join(missing[:3])}")
    if isinstance(claim, PoolClaim):
        return UnavailableError(f"pool {claim.pool_id} has fewer than {claim.quantity} left")
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
