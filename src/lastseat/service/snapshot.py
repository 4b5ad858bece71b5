"""A plain, storage-independent picture of a whole database, for the race lab's checker."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SeatRow:
    seat_id: str
    event_id: str
    status: str  # available | held | sold
    hold_id: str | None
    price_minor: int


@dataclass(frozen=True, slots=True)
class PoolRow:
    pool_id: str
    event_id: str
    capacity: int
    held: int
    sold: int
    price_minor: int


@dataclass(frozen=True, slots=True)
class HoldRow:
    hold_id: str
    buyer_id: str
    status: str  # active | converted | released | expired
    seat_ids: tuple[str, ...]
    pool_id: str | None
    quantity: int
    expires_at_us: int


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    buyer_id: str
    hold_id: str
    status: str  # pending_payment | confirmed | failed | expired | refunded
    amount_minor: int
    currency: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TicketRow:
    ticket_id: str
    order_id: str
    seat_id: str | None
    pool_id: str | None
    code: str
    status: str  # valid | void


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    kind: str  # wallet | revenue | world
    currency: str
    balance_minor: int


@dataclass(frozen=True, slots=True)
class TransferRow:
    transfer_id: str
    kind: str  # top_up | purchase | refund | transfer
    source: str
    destination: str
    amount_minor: int
    currency: str
    order_id: str | None


@dataclass(frozen=True, slots=True)
class EntryRow:
    transfer_id: str
    account_id: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PaymentRow:
    order_id: str
    payment_key: str
    status: str  # pending | captured | declined | refund_pending | refunded
    amount_minor: int
    currency: str
    payment_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every row the invariants speak about, read in one consistent transaction."""

    seats: tuple[SeatRow, ...] = field(default=())
    pools: tuple[PoolRow, ...] = field(default=())
    holds: tuple[HoldRow, ...] = field(default=())
    orders: tuple[OrderRow, ...] = field(default=())
    tickets: tuple[TicketRow, ...] = field(default=())
    accounts: tuple[AccountRow, ...] = field(default=())
    transfers: tuple[TransferRow, ...] = field(default=())
    entries: tuple[EntryRow, ...] = field(default=())
    payments: tuple[PaymentRow, ...] = field(default=())
