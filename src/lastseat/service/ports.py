"""The ports the use cases need: a transactional store and a claim strategy.

`InventoryTx` is one open transaction. It rolls back unless the `with` block that opened it
ends normally (the unit of work). Strategies call the claim primitives; use cases call the rest.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from lastseat.domain.holds import Claim, ClaimRequest, Hold, HoldStatus, SeatClaim, SectionClaim
from lastseat.domain.inventory import Event
from lastseat.domain.ledger import AccountKind, Transfer
from lastseat.domain.money import Money
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.payments import Payment, PaymentStatus
from lastseat.domain.tickets import Ticket
from lastseat.service.idempotency import IdempotencyRecords
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

T = TypeVar("T")


class Stage(enum.StrEnum):
    """What a claim turns free inventory into: held by a hold, or sold at once."""

    HELD = "held"
    SOLD = "sold"


class Isolation(enum.StrEnum):
    """The isolation level a write transaction asks for (stores without levels ignore it)."""

    READ_COMMITTED = "read committed"
    REPEATABLE_READ = "repeatable read"
    SERIALIZABLE = "serializable"


@dataclass(frozen=True, slots=True)
class SeatState:
    """A seat as read for a check; `status` already treats lapsed holds as available."""

    seat_id: str
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class PoolState:
    """A pool's counters as read for a check."""

    pool_id: str
    capacity: int
    held: int
    sold: int
    version: int

    @property
    def free(self) -> int:
        """Units neither held nor sold."""
        return self.capacity - self.held - self.sold


@dataclass(frozen=True, slots=True)
class SeatView:
    """One seat on the seat map."""

    seat_id: str
    section: str
    row: int
    number: int
    price: Money
    available: bool


@dataclass(frozen=True, slots=True)
class PoolView:
    """One pool's availability."""

    pool_id: str
    name: str
    capacity: int
    available: int
    price: Money


@dataclass(frozen=True, slots=True)
class Availability:
    """What an event has left, with lapsed holds counted as free (expired lazily on read)."""

    event_id: str
    name: str
    seats: tuple[SeatView, ...]
    pools: tuple[PoolView, ...]

    @property
    def seats_available(self) -> int:
        """Free assigned seats."""
        return sum(1 for s in self.seats if s.available)


@dataclass(frozen=True, slots=True)
class Sale:
    """What a sale writes once its inventory is claimed, handed to the store as one batch.

    The claim holds a hot row's lock from its write to COMMIT, so everything the sale adds
    after it (the hold of a quick buy, the revenue credit, the wallet debit, the transfer and
    its entries, the order, the tickets) reaches the database in one round trip.
    """

    order: Order  # confirmed
    transfer: Transfer  # from the buyer's wallet to the order's revenue account
    tickets: tuple[Ticket, ...]
    new_hold: Hold | None = None  # a quick buy's hold, stored with the sale


class ReadTx(Protocol):
    """Reads: checks made outside a write transaction (naive, optimistic) and lookups."""

    def read_seats(self, seat_ids: Sequence[str], now: datetime) -> list[SeatState]: ...
    def read_pool(self, pool_id: str, now: datetime) -> PoolState | None: ...
    def missing_inventory(self, claim: ClaimRequest) -> list[str]: ...
    # Up to `claim.quantity` free seats of the section, ascending; the search begins at the
    # seat `start` (0 <= start < 1) of the way through the section and wraps around, so that
    # concurrent buyers given random starts look at different seats (DESIGN.md §9).
    def free_seats(self, claim: SectionClaim, now: datetime, start: float) -> list[str]: ...
    def price_of(self, claim: Claim) -> Money: ...
    def get_hold(self, hold_id: str) -> Hold | None: ...
    def get_order(self, order_id: str) -> Order | None: ...
    def get_payment(self, order_id: str) -> Payment | None: ...
    def orders_of(self, buyer_id: str, limit: int) -> list[Order]: ...
    def tickets_of(self, order_id: str) -> list[Ticket]: ...
    def balance(self, account_id: str) -> Money | None: ...
    def availability(self, event_id: str, now: datetime) -> Availability | None: ...
    def event_currency(self, event_id: str) -> str | None: ...


class InventoryTx(ReadTx, IdempotencyRecords, Protocol):
    """One write transaction: claim primitives for strategies, records for use cases."""

    # Claim primitives; seat ids always arrive in ascending (lock) order.
    def release_lapsed_holds(self, claim: ClaimRequest, now: datetime) -> int: ...
    def lock_seats(self, seat_ids: Sequence[str], *, nowait: bool = False) -> None: ...
    def lock_pool(self, pool_id: str, *, nowait: bool = False) -> None: ...
    # As free_seats, but locks what it returns and skips (never waits for) seats another
    # transaction has locked; lapsed holds must have been released first.
    def lock_free_seats(self, claim: SectionClaim, start: float) -> list[str]: ...
    def write_seats(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> None: ...
    def claim_seats_if_free(self, seat_ids: Sequence[str], hold_id: str, stage: Stage) -> int: ...
    def claim_seats_if_version(
        self, seen: Mapping[str, int], hold_id: str, stage: Stage
    ) -> int: ...
    def write_pool(self, pool_id: str, column: Stage, value: int) -> None: ...
    def claim_pool_if_room(self, pool_id: str, quantity: int, stage: Stage) -> int: ...
    def claim_or_abort(
        self,
        claim: Claim,
        hold_id: str,
        stage: Stage,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        """The conditional write of everything `claim` names, whose answer no one waits for:
        if it takes less, InventoryTakenError aborts the transaction, here or when it ends
        (PostgreSQL sends it with the sale and the COMMIT, see adapters/postgres/sales.py).
        The condition: free, or, with `versions` (seat or pool id -> version seen), unchanged."""
        ...

    def flush(self) -> None:
        """Send whatever is queued and wait for it (a queued error raises here)."""
        ...

    def claim_pool_if_version(
        self, pool_id: str, quantity: int, stage: Stage, seen_version: int
    ) -> int: ...

    # Records.
    def insert_hold(self, hold: Hold) -> int: ...
    def move_hold(self, hold_id: str, old: HoldStatus, new: HoldStatus) -> bool: ...
    def lapsed_hold_ids(self, now: datetime, limit: int) -> list[str]: ...
    def expire_hold(self, hold_id: str) -> bool: ...
    def sell_held(self, hold: Hold) -> None: ...
    def release_inventory(self, hold: Hold, stage: Stage) -> None: ...
    def insert_order(self, order: Order) -> None: ...
    def move_order(self, order_id: str, old: OrderStatus, new: OrderStatus) -> bool: ...
    def insert_tickets(self, tickets: Sequence[Ticket]) -> None: ...
    def void_tickets(self, order_id: str) -> int: ...
    def advisory_lock(self, resources: Sequence[str]) -> int:
        """Lock `resources` (in the given order) until this transaction ends; return a fencing
        token drawn while holding them (so tokens grow in lock order)."""
        ...

    def check_fence(self, resource: str, token: int) -> None:
        """Record `token` for `resource`, or raise FencedOutError if a higher one was seen."""
        ...

    # Payments at a provider outside the database (see domain/payments.py).
    def insert_payment(self, payment: Payment, now: datetime) -> None: ...
    def move_payment(
        self,
        order_id: str,
        old: PaymentStatus,
        new: PaymentStatus,
        now: datetime,
        payment_id: str | None = None,
    ) -> bool: ...
    def lease_payment(self, order_id: str, now: datetime, until: datetime) -> bool: ...
    def unsettled_payments(self, now: datetime, limit: int) -> list[str]: ...
    def set_payment_lease(self, order_id: str, until: datetime) -> None: ...
    def order_of_hold(self, hold_id: str) -> str | None: ...
    def transfer_parties(self, transfer_id: str) -> tuple[str, str] | None: ...

    def ensure_account(self, account_id: str, kind: AccountKind, currency: str) -> None: ...
    def post_transfer(self, transfer: Transfer) -> None: ...
    def record_sale(self, sale: Sale) -> None:
        """Write everything a claimed sale adds, in one go. A wallet that cannot pay raises
        why (domain.ledger.refused_debit): here, or, where the store sends the sale with its
        COMMIT (PostgreSQL), when the transaction ends; either way nothing is kept."""
        ...

    def insert_event(self, event: Event) -> None: ...


class Store(Protocol):
    """A database that hands out transactions; one instance per process."""

    def read(self) -> AbstractContextManager[ReadTx]: ...
    def write(
        self,
        stats: StrategyStatistics | None = None,
        *,
        isolation: Isolation = Isolation.READ_COMMITTED,
        durable: bool = True,
    ) -> AbstractContextManager[InventoryTx]:
        """A write transaction. `durable=False` lets its COMMIT return before its WAL is
        flushed, where the store can (PostgreSQL `synchronous_commit = off`): only for writes
        whose loss in a crash is harmless, or that a later durable commit flushes anyway."""
        ...

    def snapshot(self) -> Snapshot: ...
    def close(self) -> None: ...


class Pause(Protocol):
    """Called between the check and the mark-sold: the article's "take money" step.

    The race lab sleeps here to widen the window; interleaving tests wait on a barrier here.
    """

    def __call__(self) -> None: ...


def no_pause() -> None:
    """The production default: no artificial gap between check and write."""


class ClaimStrategy(Protocol):
    """How inventory is claimed under concurrency (DESIGN.md §5)."""

    name: str
    guarded: bool

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
        ...

    def claim_section(
        self,
        store: Store,
        claim: SectionClaim,
        stage: Stage,
        hold_id: str,
        now: datetime,
        finish: Callable[[InventoryTx, SeatClaim], T],
    ) -> T:
        """Claim any free seats of a section, then run `finish` with the seats chosen."""
        ...

    def statistics(self) -> StrategyStatistics:
        """Counters since this strategy object was made."""
        ...
