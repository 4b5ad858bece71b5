"""What the client sends and gets back: typed parameters, call results and statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PENDING_PAYMENT = "pending_payment"


@dataclass(frozen=True, slots=True)
class SeatBlock:
    """`rows` x `seats_per_row` assigned seats of one section at one price."""

    section: str
    rows: int
    seats_per_row: int
    price_minor: int

    def to_json(self) -> dict[str, Any]:
        """The block as the API's `seat_blocks` member."""
        return {
            "section": self.section,
            "rows": self.rows,
            "seats_per_row": self.seats_per_row,
            "price_minor": self.price_minor,
        }


@dataclass(frozen=True, slots=True)
class Pool:
    """A general-admission pool of `capacity` units at one price."""

    name: str
    capacity: int
    price_minor: int

    def to_json(self) -> dict[str, Any]:
        """The pool as the API's `pools` member."""
        return {"name": self.name, "capacity": self.capacity, "price_minor": self.price_minor}


@dataclass(frozen=True, slots=True)
class Result:
    """A successful answer, with what it took to get it (to compare replays)."""

    status: int
    body: dict[str, Any]
    replayed: bool
    idempotency_key: str | None
    attempts: int
    location: str | None

    @property
    def order_status(self) -> str | None:
        """The order's status when the body is an order (bare or with its tickets)."""
        order = self.body.get("order", self.body)
        status = order.get("status") if isinstance(order, dict) else None
        return status if isinstance(status, str) else None

    @property
    def order_id(self) -> str | None:
        """The order's id when the body is an order (bare or with its tickets)."""
        order = self.body.get("order", self.body)
        found = order.get("order_id") if isinstance(order, dict) else None
        return found if isinstance(found, str) else None

    @property
    def pending(self) -> bool:
        """The payment outcome is not known yet: poll with `wait_for_order`."""
        return self.order_status == PENDING_PAYMENT


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """Counters of a client and the clients made from it by `with_token`."""

    calls: int
    requests: int
    retries: int
    transport_errors: int
    budget_exhausted: int
    replays: int
