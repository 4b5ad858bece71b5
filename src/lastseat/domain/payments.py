"""Our record of one order's payment at a provider, and its state machine.

    pending --captured--> captured            (the order is confirmed in the same transaction)
    pending --declined--> declined            (the order failed, its hold was released)
    pending --captured, cannot fulfil--> refund_pending --refunded--> refunded
    captured --cancelled--> refund_pending

`pending` means "we may have asked and do not know the answer": only the provider, asked
again with the same payment key, can settle it. `refund_pending` likewise for the refund.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from lastseat.domain.errors import InvalidTransitionError
from lastseat.domain.money import Money


class PaymentStatus(enum.StrEnum):
    """Where an order's payment stands, as far as we know."""

    PENDING = "pending"
    CAPTURED = "captured"
    DECLINED = "declined"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.CAPTURED, PaymentStatus.DECLINED, PaymentStatus.REFUND_PENDING}
    ),
    PaymentStatus.CAPTURED: frozenset({PaymentStatus.REFUND_PENDING}),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.REFUND_PENDING: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDED: frozenset(),
}

# Statuses the reconciler still has to drive to an end.
UNSETTLED = (PaymentStatus.PENDING, PaymentStatus.REFUND_PENDING)


@dataclass(frozen=True, slots=True)
class Payment:
    """An order's payment: its provider key, what we know, and who may drive it until when."""

    order_id: str
    provider: str
    payment_key: str
    status: PaymentStatus
    amount: Money
    payment_id: str | None  # the provider's id, once it answered with one
    attempts: int  # charge or refund calls made so far
    lease_until: datetime  # until then one driver (a request or a reconciler) owns it

    def to(self, status: PaymentStatus) -> Payment:
        """This payment moved to `status`, if the transition table allows it."""
        if status not in PAYMENT_TRANSITIONS[self.status]:
            raise InvalidTransitionError(f"payment {self.status} -> {status} is not allowed")
        return replace(self, status=status)
