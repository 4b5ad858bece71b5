"""What is for sale: events with assigned seats and general-admission pools."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from lastseat.domain.errors import ValidationError
from lastseat.domain.money import Money

MAX_SEATS_PER_EVENT = 200_000
MAX_POOL_CAPACITY = 10_000_000
MAX_ROWS = 9_999  # seat ids pad row and number to 4 digits so that they sort in lock order
# A claim's total (price x at most 50 seats or units) must stay a valid transfer amount
# (ledger.MAX_AMOUNT_MINOR = 10**12), or a sale the event allows would fail at payment.
MAX_PRICE_MINOR = 2 * 10**10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class SeatStatus(enum.StrEnum):
    """Where a seat stands; `held` seats belong to exactly one hold."""

    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


def check_name(kind: str, value: str) -> str:
    """A short printable identifier-like name, or ValidationError."""
    if not _NAME.fullmatch(value):
        raise ValidationError(
            f"{kind} must be 1-64 letters, digits, spaces, '_', '.' or '-', got {value!r}"
        )
    return value


def check_id(kind: str, value: str) -> str:
    """An identifier: 1-64 letters, digits, '_', '.', ':' or '-', starting alphanumeric."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(f"{kind} must be 1-64 letters, digits, '_', '.', ':' or '-'")
    return value


def seat_id_for(event_id: str, section: str, row: int, number: int) -> str:
    """The stable id of a seat; sorts by section, row, then number (the global lock order)."""
    return f"{event_id}/{section}/{row:04d}/{number:04d}"


@dataclass(frozen=True, slots=True)
class Seat:
    """One assigned place."""

    seat_id: str
    section: str
    row: int
    number: int
    price: Money


@dataclass(frozen=True, slots=True)
class Pool:
    """A general-admission capacity counter."""

    pool_id: str
    name: str
    capacity: int
    price: Money

    def __post_init__(self) -> None:
        if not 0 <= self.capacity <= MAX_POOL_CAPACITY:
            raise ValidationError(f"pool capacity must be 0..{MAX_POOL_CAPACITY}")
        if not 0 < self.price.amount_minor <= MAX_PRICE_MINOR:
            raise ValidationError(f"pool price must be 1..{MAX_PRICE_MINOR} minor units")


@dataclass(frozen=True, slots=True)
class SeatBlock:
    """A rectangular block of seats in one section: `rows` x `seats_per_row`."""

    section: str
    rows: int
    seats_per_row: int
    price: Money

    def __post_init__(self) -> None:
        check_name("section", self.section)
        if not (1 <= self.rows <= MAX_ROWS and 1 <= self.seats_per_row <= MAX_ROWS):
            raise ValidationError(f"a seat block has 1..{MAX_ROWS} rows of 1..{MAX_ROWS} seats")
        if self.rows * self.seats_per_row > MAX_SEATS_PER_EVENT:
            raise ValidationError(f"an event may have at most {MAX_SEATS_PER_EVENT} seats")
        if not 0 < self.price.amount_minor <= MAX_PRICE_MINOR:
            raise ValidationError(f"seat price must be 1..{MAX_PRICE_MINOR} minor units")

    def seats(self, event_id: str) -> list[Seat]:
        """Every seat of the block, in lock order."""
        return [
            Seat(
                seat_id_for(event_id, self.section, row, number),
                self.section,
                row,
                number,
                self.price,
            )
            for row in range(1, self.rows + 1)
            for number in range(1, self.seats_per_row + 1)
        ]


@dataclass(frozen=True, slots=True)
class Event:
    """The show being sold, with its seats and pools."""

    event_id: str
    name: str
    currency: str
    seats: tuple[Seat, ...] = field(default=())
    pools: tuple[Pool, ...] = field(default=())

    def __post_init__(self) -> None:
        check_id("event id", self.event_id)
        check_name("event name", self.name)
        if not self.seats and not self.pools:
            raise ValidationError("an event needs at least one seat or one pool")
        if len(self.seats) > MAX_SEATS_PER_EVENT:
            raise ValidationError(f"an event may have at most {MAX_SEATS_PER_EVENT} seats")
        prices = [s.price for s in self.seats] + [p.price for p in self.pools]
        if any(p.currency != self.currency for p in prices):
            raise ValidationError("every price of an event must be in the event's currency")
        ids = [s.seat_id for s in self.seats]
        if len(set(ids)) != len(ids):
            raise ValidationError("seat positions must be unique within an event")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValidationError("pool names must be unique within an event")


def build_event(
    event_id: str,
    name: str,
    currency: str,
    blocks: list[SeatBlock],
    pools: list[tuple[str, int, Money]],
) -> Event:
    """An event from seat blocks and (name, capacity, price) pool specs."""
    seats = tuple(seat for block in blocks for seat in block.seats(event_id))
    pool_objs = tuple(
        Pool(f"{event_id}/{check_name('pool', pname)}", pname, capacity, price)
        for pname, capacity, price in pools
    )
    return Event(event_id, name, currency, seats, pool_objs)
