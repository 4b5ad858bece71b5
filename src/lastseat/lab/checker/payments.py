"""Rules for orders paid through an external provider, read against its own records.

Invariant 3 at the provider: every confirmed order has exactly one capture, every capture has
a confirmed order or a refund, nothing is captured or refunded twice. Invariant 4: what the
provider kept (captured - refunded) is the price of the confirmed orders it paid, to the cent,
and our payment rows agree with it. Invariant 5: once reconciled, nothing is left unknown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from lastseat.domain.orders import OrderStatus
from lastseat.domain.payments import UNSETTLED, PaymentStatus
from lastseat.lab.checker.answers import unresolved_operations
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.provider import ProviderBook, ProviderPayment
from lastseat.lab.checker.violations import Violation
from lastseat.service.snapshot import PaymentRow

# Orders whose capture must have been given back in full.
_GIVEN_BACK = frozenset({OrderStatus.REFUNDED, OrderStatus.EXPIRED})


def capture_count(book: ProviderBook) -> int:
    """Captures the provider made under our keys (a payment captured twice counts twice)."""
    return sum(_times(p) for order_id in book.payments for p in book.captures(order_id))


def refund_count(book: ProviderBook) -> int:
    """Refunds the provider made for our orders."""
    return sum(len(refunds) for refunds in book.refunds.values())


def _times(payment: ProviderPayment) -> int:
    return max(1, payment.captures or 0)


def _ids(payments: tuple[ProviderPayment, ...]) -> str:
    return ", ".join(sorted(p.payment_id for p in payments))


# --- invariant 3: one capture per confirmed order, none without one ----------------------------


def double_captures(facts: Facts, book: ProviderBook) -> Iterator[Violation]:
    """Orders captured more than once, or refunded beyond what was captured."""
    for order_id in sorted(book.payments.keys() | book.refunds.keys()):
        captures = book.captures(order_id)
        times = sum(_times(p) for p in captures)
        if times > 1:
            yield Violation(
                "double_capture",
                f"order {order_id} was captured {times} times at the provider: {_ids(captures)}",
            )
        captured, refunded = book.captured_minor(order_id), book.refunded_minor(order_id)
        if refunded > captured:
            ids = ", ".join(sorted(r.refund_id for r in book.refunds[order_id]))
            yield Violation(
                "double_capture",
                f"order {order_id} was refunded {refunded} ({ids}) of {captured} captured",
            )


def captures_without_ticket(facts: Facts, book: ProviderBook) -> Iterator[Violation]:
    """Captures for a missing order, or kept for an order that is not confirmed."""
    for order_id in sorted(book.payments):
        captures = book.captures(order_id)
        if not captures:
            continue
        order = facts.orders.get(order_id)
        if order is None:
            yield Violation(
                "capture_without_ticket",
                f"the provider captured {_ids(captures)} for order {order_id},"
                " which does not exist",
            )
        elif order.status != OrderStatus.CONFIRMED and not book.settled_in_full(order_id):
            kept = book.captured_minor(order_id) - book.refunded_minor(order_id)
            yield Violation(
                "capture_without_ticket",
                f"order {order_id} of {order.buyer_id} is {order.status}, but the provider"
                f" kept {kept} {order.currency} of {_ids(captures)}",
            )


def confirmed_without_capture(facts: Facts, book: ProviderBook) -> Iterator[Violation]:
    """Externally paid orders confirmed with no capture kept, or given back but not refunded."""
    for order in facts.orders.values():
        if not facts.paid_externally(order.order_id):
            continue
        captured = bool(book.captures(order.order_id))
        settled = book.settled_in_full(order.order_id)
        reason = None
        if order.status == OrderStatus.CONFIRMED and not captured:
            reason = "was never captured at the provider"
        elif order.status == OrderStatus.CONFIRMED and settled:
            reason = "had its capture refunded at the provider"
        elif order.status in _GIVEN_BACK and captured and not settled:
            reason = "was captured, and never refunded at the provider"
        if reason is not None:
            yield Violation(
                "confirmed_without_charge",
                f"order {order.order_id} of {order.buyer_id} is {order.status} but {reason}",
            )


# --- invariant 4: captured - refunded = price of the confirmed orders ---------------------------


def money_unbalanced(facts: Facts, book: ProviderBook) -> Iterator[Violation]:
    """Currencies where the provider kept other than the confirmed orders' price; rows off it."""
    kept: Counter[str] = Counter()
    for order_id in book.payments.keys() | book.refunds.keys():
        for payment in book.captures(order_id):
            kept[payment.currency] += payment.amount_minor
        for refund in book.refunds.get(order_id, ()):
            kept[refund.currency] -= refund.amount_minor
    owed: Counter[str] = Counter()
    for order in facts.orders.values():
        if order.status == OrderStatus.CONFIRMED and facts.paid_externally(order.order_id):
            owed[order.currency] += order.amount_minor
    for currency in sorted(kept.keys() | owed.keys()):
        if kept[currency] != owed[currency]:
            yield Violation(
                "money_unbalanced",
                f"the provider kept {kept[currency]} {currency} (captured - refunded), but the"
                f" confirmed orders it paid come to {owed[currency]}",
            )
    for row in sorted(facts.payments.values(), key=lambda r: r.order_id):
        reason = _row_disagreement(row, book)
        if reason is not None:
            yield Violation(
                "money_unbalanced", f"payment row of order {row.order_id} says {reason}"
            )


def _row_disagreement(row: PaymentRow, book: ProviderBook) -> str | None:
    """How our payment row contradicts the provider's records, if it does."""
    captures = book.captures(row.order_id)
    if row.status == PaymentStatus.CAPTURED and not captures:
        return "captured, but the provider has no capture"
    if row.status == PaymentStatus.CAPTURED and row.payment_id not in {
        p.payment_id for p in captures
    }:
        return f"captured as {row.payment_id}, but the provider captured {_ids(captures)}"
    if row.status == PaymentStatus.REFUNDED and not book.refunds.get(row.order_id):
        return "refunded, but the provider has no refund"
    if row.status == PaymentStatus.DECLINED and captures:
        return f"declined, but the provider captured {_ids(captures)}"
    return None


# --- invariant 5: nothing is left unknown ---------------------------------------------------------


def unresolved_payments(facts: Facts, book: ProviderBook) -> Iterator[Violation]:
    """Payment rows still unsettled, orders still pending, unknown answers still open."""
    for row in sorted(facts.payments.values(), key=lambda r: r.order_id):
        if row.status in UNSETTLED:
            yield Violation(
                "unresolved_payment",
                f"payment of order {row.order_id} is still {row.status}"
                f" (provider calls made: {row.attempts})",
            )
    for order in facts.orders.values():
        if order.status == OrderStatus.PENDING_PAYMENT:
            yield Violation(
                "unresolved_payment",
                f"order {order.order_id} of {order.buyer_id} is still {order.status}",
            )
    yield from unresolved_operations(facts)
