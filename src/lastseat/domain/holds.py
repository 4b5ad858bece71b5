"""Holds: a time-limited claim on seats or pool units for one buyer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lastseat.domain.errors import InvalidTransitionError, ValidationError
from lastseat.domain.inventory import check_id, check_name

DEFAULT_HOLD_TTL = timedelta(minutes=10)
MAX_HOLD_TTL = timedelta(hours=2)
MAX_SEATS_PER_CLAIM = 50
MAX_UNITS_PER_CLAIM = 50


class HoldStatus(enum.StrEnum):
    """Life of a hold: active until converted into an order, released or expired."""

    ACTIVE = "active"
    CONVERTED = "converted"
    RELEASED = "released"
    EXPIRED = "expired"


HOLD_TRANSITIONS: dict[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.ACTIVE: frozenset({HoldStatus.CONVERTED, HoldStatus.RELEASED, HoldStatus.EXPIRED}),
    HoldStatus.CONVERTED: frozenset(),
    HoldStatus.RELEASED: frozenset(),
    # A lapsed hold may still be paid if its inventory can be claimed again (DESIGN.md §4).
    HoldStatus.EXPIRED: frozenset({HoldStatus.CONVERTED}),
}


@dataclass(frozen=True, slots=True)
class SeatClaim:
    """Specific seats, all or nothing."""

    event_id: str
    seat_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.seat_ids) <= MAX_SEATS_PER_CLAIM:
            raise ValidationError(f"a claim names 1..{MAX_SEATS_PER_CLAIM} seats")
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValidationError("a claim names each seat once")
        for seat_id in self.seat_ids:
            if not (isinstance(seat_id, str) and seat_id.startswith(f"{self.event_id}/")):
                raise ValidationError(f"seat {seat_id!r} is not a seat of event {self.event_id}")
        # The global lock order: every multi-seat claim touches seats ascending by id.
        object.__setattr__(self, "seat_ids", tuple(sorted(self.seat_ids)))

    @property
    def quantity(self) -> int:
        """Number of tickets this claim yields."""
        return len(self.seat_ids)


@dataclass(frozen=True, slots=True)
class PoolClaim:
    """Some units of one general-admission pool."""

    event_id: str
    pool_id: str
    quantity: int

    def __post_init__(self) -> None:
        if not self.pool_id.startswith(f"{self.event_id}/"):
            raise ValidationError(f"pool {self.pool_id} does not belong to event {self.event_id}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValidationError("quantity must be a whole number")
        if not 1 <= self.quantity <= MAX_UNITS_PER_CLAIM:
            raise ValidationError(f"quantity must be 1..{MAX_UNITS_PER_CLAIM}")


@dataclass(frozen=True, slots=True)
class SectionClaim:
    """Any `quantity` free seats of one section ("best available"), all or nothing.

    A strategy resolves it into a SeatClaim (the seats it found free), so holds, orders and
    tickets only ever name specific seats, locked in seat-id order like every SeatClaim.
    """

    event_id: str
    section: str
    quantity: int

    def __post_init__(self) -> None:
        check_id("event id", self.event_id)
        check_name("section", self.section)
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValidationError("quantity must be a whole number")
        if not 1 <= self.quantity <= MAX_SEATS_PER_CLAIM:
            raise ValidationError(f"a claim names 1..{MAX_SEATS_PER_CLAIM} seats")

    def resolved(self, seat_ids: tuple[str, ...]) -> SeatClaim:
        """The specific seats chosen for this claim (validated, in lock order)."""
        if len(seat_ids) != self.quantity:
            raise ValidationError(f"{len(seat_ids)} seats chosen for a claim of {self.quantity}")
        return SeatClaim(self.event_id, seat_ids)


Claim = SeatClaim | PoolClaim
# What a buyer may ask for: a resolved claim, or any seats of a section.
ClaimRequest = SeatClaim | PoolClaim | SectionClaim


@dataclass(frozen=True, slots=True)
class Hold:
    """A claim that lapses at `expires_at` unless an order converts it."""

    hold_id: str
    buyer_id: str
    claim: Claim
    status: HoldStatus
    created_at: datetime
    expires_at: datetime
    fence: int = 0

    def is_lapsed(self, now: datetime) -> bool:
        """Active in storage but past its expiry time (expired lazily, on read)."""
        return self.status is HoldStatus.ACTIVE and now >= self.expires_at

    def to(self, status: HoldStatus) -> Hold:
        """This hold moved to `status`, if the transition table allows it."""
        if status not in HOLD_TRANSITIONS[self.status]:
            raise InvalidTransitionError(f"hold {self.status} -> {status} is not allowed")
        return replace(self, status=status)


def expiry_for(now: datetime, ttl: timedelta) -> datetime:
    """When a hold placed now with this TTL lapses."""
    if not timedelta(seconds=1) <= ttl <= MAX_HOLD_TTL:
        raise ValidationError(f"hold ttl must be between 1 s and {MAX_HOLD_TTL}")
    return now + ttl
