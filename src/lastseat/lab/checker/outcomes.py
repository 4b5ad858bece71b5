"""Rules for what buyers were told: it is true (invariant 5)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from lastseat.domain.ledger import TransferKind
from lastseat.domain.orders import OrderStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.violations import Violation
from lastseat.lab.history import CANCEL_ACTION, Operation
from lastseat.service.snapshot import TicketRow

REFUND_ACTION = "refund"
_WALLET_PREFIX = "wallet:"

_Target = tuple[str, str]  # ("seat", seat_id) or ("pool", pool_id): what one ticket is for


def missing_tickets(facts: Facts) -> Iterator[Violation]:
    """Successes not backed by exactly the claimed tickets; partial confirmed orders."""
    # A success later refunded at the buyer's own request rightly has only void tickets.
    refunds_asked = {
        op.order_id
        for op in facts.attempts
        if op.acts_as() in (REFUND_ACTION, CANCEL_ACTION) and op.type != "fail"
    }
    for op in facts.attempts:
        if op.type == "ok" and op.is_purchase() and (op.seat_ids or op.pool_id):
            reason = _unbacked_success(facts, op, refunds_asked)
            if reason is not None:
                yield Violation(
                    "missing_tickets", f"op {op.op_id} told {op.buyer_id} success, but {reason}"
                )
    for order in facts.orders.values():
        count = len(facts.valid_by_order.get(order.order_id, ()))
        if order.status == OrderStatus.CONFIRMED and count != order.quantity:
            yield Violation(
                "missing_tickets",
                f"confirmed order {order.order_id} has {count} valid tickets of {order.quantity}",
            )


def _unbacked_success(facts: Facts, op: Operation, refunds_asked: set[str | None]) -> str | None:
    """Why an acknowledged claim is not a confirmed order holding exactly what it claimed."""
    order = facts.orders.get(op.order_id or "")
    if order is None:
        return f"order {op.order_id} does not exist"
    if order.status == OrderStatus.REFUNDED and order.order_id in refunds_asked:
        return None
    if order.status != OrderStatus.CONFIRMED:
        return f"order {order.order_id} is {order.status}"
    tickets = facts.valid_by_order.get(order.order_id, ())
    claimed: Counter[_Target] = Counter(("seat", seat_id) for seat_id in op.seat_ids)
    if op.pool_id is not None:
        claimed[("pool", op.pool_id)] += op.quantity
    held = Counter(_target(t) for t in tickets)
    if held != claimed:
        return f"order {order.order_id} has {sorted(held.items())}, not {sorted(claimed.items())}"
    if sorted(op.ticket_codes) != sorted(t.code for t in tickets):
        return f"its codes are not those of order {order.order_id}'s valid tickets"
    return None


def _target(ticket: TicketRow) -> _Target:
    if ticket.seat_id is not None:
        return ("seat", ticket.seat_id)
    return ("pool", ticket.pool_id or "")


def failures_with_tickets(facts: Facts) -> Iterator[Violation]:
    """Failures whose order is confirmed; buyers told only failure who hold an order anyway."""
    reported: set[str] = set()
    for op in facts.attempts:
        order = facts.orders.get(op.order_id or "")
        if (
            op.type == "fail"
            and op.is_purchase()
            and order is not None
            and order.status == OrderStatus.CONFIRMED
        ):
            reported.add(op.buyer_id)
            yield Violation(
                "failure_with_tickets",
                f"op {op.op_id} told {op.buyer_id} failure, but order {order.order_id} is"
                " confirmed",
            )
    outcomes: dict[str, set[str]] = defaultdict(set)
    for op in facts.attempts:
        outcomes[op.buyer_id].add(op.type)
    holdings = _holdings(facts)
    for buyer_id, types in sorted(outcomes.items()):
        if types == {"fail"} and buyer_id in holdings and buyer_id not in reported:
            yield Violation(
                "failure_with_tickets",
                f"buyer {buyer_id} was only told failure, but holds orders"
                f" {', '.join(holdings[buyer_id])}",
            )


def _holdings(facts: Facts) -> dict[str, list[str]]:
    """Buyer id -> their orders that are confirmed or carry valid tickets."""
    holdings: dict[str, list[str]] = defaultdict(list)
    for order in facts.orders.values():
        if order.status == OrderStatus.CONFIRMED or facts.valid_by_order.get(order.order_id):
            holdings[order.buyer_id].append(order.order_id)
    return holdings


def standing_charges(facts: Facts) -> Iterator[Violation]:
    """Buyers whose net wallet purchases differ from their confirmed wallet-paid orders."""
    paid: Counter[tuple[str, str]] = Counter()
    for t in facts.snapshot.transfers:
        if t.kind == TransferKind.PURCHASE:
            paid[(_payer(facts, t.order_id, t.source), t.currency)] += t.amount_minor
        elif t.kind == TransferKind.REFUND:
            paid[(_payer(facts, t.order_id, t.destination), t.currency)] -= t.amount_minor
    owed: Counter[tuple[str, str]] = Counter()
    for order in facts.orders.values():
        if order.status == OrderStatus.CONFIRMED and not facts.paid_externally(order.order_id):
            owed[(order.buyer_id, order.currency)] += order.amount_minor
    for buyer_id, currency in sorted(paid.keys() | owed.keys()):
        difference = paid[(buyer_id, currency)] - owed[(buyer_id, currency)]
        if difference != 0:
            yield Violation(
                "standing_charge",
                f"buyer {buyer_id} paid {difference:+d} {currency} beyond their confirmed orders",
            )


def _payer(facts: Facts, order_id: str | None, account_id: str) -> str:
    """Who paid: the order's buyer, else the owner of the wallet the money touched."""
    order = facts.orders.get(order_id or "")
    if order is not None:
        return order.buyer_id
    return account_id.removeprefix(_WALLET_PREFIX)
