"""Orders and their state machine: PENDING_PAYMENT -> CONFIRMED | FAILED | EXPIRED | REFUNDED."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from lastseat.domain.errors import InvalidTransitionError
from lastseat.domain.money import Money


class OrderStatus(enum.StrEnum):
    """Where an order stands."""

    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.EXPIRED}
    ),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Order:
    """What a buyer pays for: the seats or units of one hold."""

    order_id: str
    buyer_id: str
    event_id: str
    hold_id: str
    status: OrderStatus
    amount: Money
    quantity: int
    created_at: datetime

    def to(self, status: OrderStatus) -> Order:
        """This order moved to `status`, if the transition table allows it."""
        if status not in ORDER_TRANSITIONS[self.status]:
            raise InvalidTransitionError(f"order {self.status} -> {status} is not allowed")
        return replace(self, status=status)
