"""The external payment provider's own records, as the lab reads them after a race, by order.

Our keys name the order: `lastseat-pay-{order_id}` for a charge, `lastseat-refund-{order_id}`
for its refund (lastseat.service.payments). A refund belongs to the order of the payment it
names, else to the order its key names. Payments and refunds under other keys are not ours and
are left out of every check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from lastseat.service.payments import payment_key_for, refund_key_for

CAPTURED = "captured"
_PAY_PREFIX = payment_key_for("")
_REFUND_PREFIX = refund_key_for("")


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """One payment as the provider holds it."""

    payment_id: str
    idempotency_key: str
    status: str  # authorized | captured | declined
    amount_minor: int
    currency: str
    captures: int | None = None  # times captured, when the provider says


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """One refund as the provider holds it."""

    refund_id: str
    payment_id: str
    idempotency_key: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class ProviderLedger:
    """Everything the provider captured and refunded, read after the race."""

    payments: tuple[ProviderPayment, ...] = field(default=())
    refunds: tuple[ProviderRefund, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ProviderBook:
    """The provider's payments and refunds under our keys, by order id."""

    payments: Mapping[str, tuple[ProviderPayment, ...]]
    refunds: Mapping[str, tuple[ProviderRefund, ...]]

    def captures(self, order_id: str) -> tuple[ProviderPayment, ...]:
        """The order's payments the provider captured."""
        return tuple(p for p in self.payments.get(order_id, ()) if p.status == CAPTURED)

    def captured_minor(self, order_id: str) -> int:
        """The amount the provider captured for the order."""
        return sum(p.amount_minor for p in self.captures(order_id))

    def refunded_minor(self, order_id: str) -> int:
        """The amount the provider refunded for the order."""
        return sum(r.amount_minor for r in self.refunds.get(order_id, ()))

    def settled_in_full(self, order_id: str) -> bool:
        """True when the provider gave back at least all it captured for the order."""
        return self.refunded_minor(order_id) >= self.captured_minor(order_id)


def order_of_payment_key(key: str) -> str | None:
    """The order id a payment key names, or None for a key that is not ours."""
    return key.removeprefix(_PAY_PREFIX) if key.startswith(_PAY_PREFIX) else None


def book_of(ledger: ProviderLedger) -> ProviderBook:
    """Index the provider's records under our keys by order id."""
    payments: dict[str, list[ProviderPayment]] = defaultdict(list)
    order_of_payment: dict[str, str] = {}
    for payment in ledger.payments:
        order_id = order_of_payment_key(payment.idempotency_key)
        if order_id is not None:
            payments[order_id].append(payment)
            order_of_payment[payment.payment_id] = order_id
    refunds: dict[str, list[ProviderRefund]] = defaultdict(list)
    for refund in ledger.refunds:
        order_id = order_of_payment.get(refund.payment_id) or _order_of_refund_key(
            refund.idempotency_key
        )
        if order_id is not None:
            refunds[order_id].append(refund)
    return ProviderBook(
        payments={k: tuple(v) for k, v in payments.items()},
        refunds={k: tuple(v) for k, v in refunds.items()},
    )


def _order_of_refund_key(key: str) -> str | None:
    return key.removeprefix(_REFUND_PREFIX) if key.startswith(_REFUND_PREFIX) else None
