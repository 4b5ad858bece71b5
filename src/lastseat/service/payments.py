"""The payment-provider port: what takes money for an order.

Two adapters implement it: the internal wallet ledger (`transactional`: the charge is a ledger
transfer written in the same database transaction as the order) and an external card
processor over HTTP, which can be slow, down, or capture and then never answer.

Every charge carries a *payment key* that we derive from our own order row (never the client's
raw Idempotency-Key). The provider stores it: charging again with the same key returns the
first result and never captures twice, which is what makes retries and the reconciler safe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from lastseat.domain.money import Money


class ChargeStatus(enum.StrEnum):
    """Where a charge ended at the provider."""

    CAPTURED = "captured"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class Charge:
    """The provider's answer to a charge (replayed unchanged for a repeated payment key)."""

    payment_key: str
    status: ChargeStatus
    payment_id: str | None  # the provider's id; None when declined before one was made
    amount: Money
    decline_code: str | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """The provider's answer to a refund (replayed unchanged for a repeated refund key)."""

    refund_key: str
    refund_id: str
    payment_id: str
    amount: Money


def payment_key_for(order_id: str) -> str:
    """The provider key of an order's charge: derived from our order row, stable across retries."""
    return f"lastseat-pay-{order_id}"


def refund_key_for(order_id: str) -> str:
    """The provider key of an order's refund."""
    return f"lastseat-refund-{order_id}"


class PaymentProvider(Protocol):
    """Takes and gives back money; each call is idempotent by its key.

    `charge` raises PaymentUnknownError when the outcome stays unknown after the adapter's own
    bounded retries (with the same key), PaymentProviderError when the provider refuses the
    request as malformed. A decline is an answer, not an error: `Charge.status` says it.
    """

    name: str
    transactional: bool

    def charge(self, payment_key: str, buyer_id: str, amount: Money) -> Charge:
        """Authorize and capture `amount` from the buyer, once per `payment_key`."""
        ...

    def refund(self, refund_key: str, payment_id: str, amount: Money) -> Refund:
        """Give `amount` of a captured payment back, once per `refund_key`."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
