"""Rules for the answers of the `mixed` scenario's writes and reads: each one is true (inv. 5).

Kinds (each silent on histories without the actions it speaks about):

    hold_not_as_told        an acknowledged hold with no row, another buyer or another claim
                            than it answered; an acknowledged payment whose hold is not
                            converted
    cancel_not_refunded     an acknowledged cancel whose order is not refunded, keeps a valid
                            ticket, or whose money did not go back (a wallet refund of the
                            order's price, or the provider payment refunded)
    release_not_released    an acknowledged release whose hold is still active, is not in the
                            state the answer said (released / expired), still holds a seat,
                            or was paid after all
    failure_changed_state   a definite failure that changed something: a refused cancel whose
                            order is refunded, a refused release whose hold is released, a
                            refused payment whose hold has a confirmed order, none of them
                            with another attempt that may have done it; a buyer with more
                            holds than their answers account for (a refused hold or buy that
                            claimed anyway)
    release_refused_unpaid  a release refused though its hold ended released or expired and
                            never had an order: the buyer wanted it gone and it is (issue 8's
                            finding 3: the answer must not depend on who expired it first)
    read_not_as_stored      a read order that was told a status the final one cannot follow
                            from, other tickets than it has, or 404 for an order the buyer was
                            told about
    order_left_pending      a wallet-paid order still pending_payment (nobody resolved it)

An attempt's outcome is *unknown* (`info`) when no definite answer came; it excuses the state
it may have changed, either way. A resend performs the action it repeats (`Operation.acts_as`).
The rules run only on histories with the mixed scenario's actions, so the other scenarios'
worlds are judged exactly as before.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator

from lastseat.domain.holds import HoldStatus
from lastseat.domain.ledger import TransferKind
from lastseat.domain.orders import OrderStatus
from lastseat.lab.checker.facts import Facts
from lastseat.lab.checker.outcomes import REFUND_ACTION
from lastseat.lab.checker.violations import Violation
from lastseat.lab.history import (
    BUY_ACTION,
    CANCEL_ACTION,
    HOLD_ACTION,
    PAY_HOLD_ACTION,
    READ_AVAILABILITY_ACTION,
    READ_ORDER_ACTION,
    RELEASE_ACTION,
    Operation,
)
from lastseat.service.snapshot import HoldRow, OrderRow

MIXED_KINDS: tuple[str, ...] = (
    "hold_not_as_told",
    "cancel_not_refunded",
    "release_not_released",
    "failure_changed_state",
    "release_refused_unpaid",
    "read_not_as_stored",
    "order_left_pending",
)
_CANCELS = (CANCEL_ACTION, REFUND_ACTION)
_MIXED_ACTIONS = frozenset(
    {
        HOLD_ACTION,
        PAY_HOLD_ACTION,
        RELEASE_ACTION,
        CANCEL_ACTION,
        READ_ORDER_ACTION,
        READ_AVAILABILITY_ACTION,
    }
)
_GONE = frozenset({HoldStatus.RELEASED, HoldStatus.EXPIRED})
_PAID = frozenset({OrderStatus.CONFIRMED, OrderStatus.REFUNDED})
# The statuses an order may reach from the one a read saw (final ones stay as they are).
_LATER: dict[str, frozenset[str]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(OrderStatus),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CONFIRMED, OrderStatus.REFUNDED}),
}


def _acts(facts: Facts, *actions: str) -> Iterator[Operation]:
    """Completed attempts performing one of `actions` (resends included)."""
    for op in facts.attempts:
        if op.type != "invoke" and op.acts_as() in actions:
            yield op


def _holds(facts: Facts) -> dict[str, HoldRow]:
    return {h.hold_id: h for h in facts.snapshot.holds}


def _orders_of_holds(facts: Facts) -> dict[str, OrderRow]:
    return {o.hold_id: o for o in facts.orders.values()}


# --- acknowledged writes did what they said ------------------------------------------------


def holds_not_as_told(facts: Facts) -> Iterator[Violation]:
    """Acknowledged holds without their row or claim; acknowledged payments not converted."""
    holds = _holds(facts)
    for op in _acts(facts, HOLD_ACTION):
        if op.type == "ok" and op.hold_id is not None:
            reason = _hold_differs(op, holds.get(op.hold_id))
            if reason is not None:
                yield Violation("hold_not_as_told", f"op {op.op_id} placed {op.hold_id}, {reason}")
    for op in _acts(facts, PAY_HOLD_ACTION):
        hold = holds.get(op.hold_id or "")
        if op.type == "ok" and (hold is None or hold.status != HoldStatus.CONVERTED):
            state = hold.status if hold is not None else "missing"
            yield Violation(
                "hold_not_as_told", f"op {op.op_id} paid hold {op.hold_id}, which is {state}"
            )


def _hold_differs(op: Operation, hold: HoldRow | None) -> str | None:
    if hold is None:
        return "which has no row"
    if hold.buyer_id != op.buyer_id:
        return f"which belongs to {hold.buyer_id}"
    if op.seat_ids and sorted(hold.seat_ids) != sorted(op.seat_ids):
        return f"which holds seats {sorted(hold.seat_ids)}, not {sorted(op.seat_ids)}"
    if op.pool_id and (hold.pool_id, hold.quantity) != (op.pool_id, op.quantity):
        return f"which holds {hold.quantity} of {hold.pool_id}, not {op.quantity} of {op.pool_id}"
    return None


def cancels_not_refunded(facts: Facts) -> Iterator[Violation]:
    """Acknowledged cancels whose order is not refunded, tickets not void or money not back."""
    for op in _acts(facts, *_CANCELS):
        if op.type != "ok" or op.order_id is None:
            continue
        reason = _not_refunded(facts, op.order_id)
        if reason is None and op.told not in (None, OrderStatus.REFUNDED):
            reason = f"the answer said {op.told}"
        if reason is not None:
            yield Violation(
                "cancel_not_refunded",
                f"op {op.op_id} told {op.buyer_id} order {op.order_id} was cancelled, but {reason}",
            )


def _not_refunded(facts: Facts, order_id: str) -> str | None:
    order = facts.orders.get(order_id)
    if order is None:
        return "it does not exist"
    if order.status != OrderStatus.REFUNDED:
        return f"it is {order.status}"
    if facts.valid_by_order.get(order_id):
        return f"it keeps {len(facts.valid_by_order[order_id])} valid tickets"
    payment = facts.payments.get(order_id)
    if payment is not None:
        return None if payment.status == "refunded" else f"its payment is {payment.status}"
    back = sum(
        t.amount_minor for t in facts.money_by_order.get((order_id, TransferKind.REFUND), ())
    )
    if back != order.amount_minor:
        return f"{back} of its {order.amount_minor} {order.currency} went back"
    return None


def releases_not_released(facts: Facts) -> Iterator[Violation]:
    """Acknowledged releases whose hold is not given back as the answer said."""
    holds = _holds(facts)
    orders = _orders_of_holds(facts)
    held_seats: dict[str, list[str]] = defaultdict(list)
    for seat in facts.snapshot.seats:
        if seat.hold_id is not None and seat.status == "held":
            held_seats[seat.hold_id].append(seat.seat_id)
    for op in _acts(facts, RELEASE_ACTION):
        if op.type != "ok" or op.hold_id is None:
            continue
        hold, order = holds.get(op.hold_id), orders.get(op.hold_id)
        reason = None
        if hold is None:
            reason = "it has no row"
        elif hold.status not in _GONE:
            reason = f"it is {hold.status}"
        elif op.told in _GONE and hold.status != op.told:
            reason = f"the answer said {op.told}, and it is {hold.status}"
        elif held_seats.get(op.hold_id):
            reason = f"it still holds seats {sorted(held_seats[op.hold_id])}"
        elif order is not None and order.status in _PAID:
            reason = f"its order {order.order_id} is {order.status}"
        if reason is not None:
            yield Violation(
                "release_not_released",
                f"op {op.op_id} told {op.buyer_id} hold {op.hold_id} was released, but {reason}",
            )


# --- definite failures changed nothing --------------------------------------------------------


def failures_changed_state(facts: Facts) -> Iterator[Violation]:
    """Refused cancels, releases, payments and holds whose change happened anyway."""
    yield from _refused(
        facts,
        _CANCELS,
        lambda op: op.order_id,
        lambda target: _order_status(facts, target) == OrderStatus.REFUNDED,
        "the order is refunded",
    )
    holds, orders = _holds(facts), _orders_of_holds(facts)
    yield from _refused(
        facts,
        (RELEASE_ACTION,),
        lambda op: op.hold_id,
        lambda target: target in holds and holds[target].status == HoldStatus.RELEASED,
        "the hold is released",
    )
    yield from _refused(
        facts,
        (PAY_HOLD_ACTION,),
        lambda op: op.hold_id,
        lambda target: target in orders and orders[target].status in _PAID,
        "the hold has a paid order",
    )
    yield from _unexplained_holds(facts)


def _refused(
    facts: Facts,
    actions: tuple[str, ...],
    target_of: Callable[[Operation], str | None],
    changed: Callable[[str], bool],
    what: str,
) -> Iterator[Violation]:
    """Failed attempts at `actions` whose target changed, with no other attempt that could."""
    tried = {target_of(op) for op in _acts(facts, *actions) if op.type != "fail"}
    for op in _acts(facts, *actions):
        target = target_of(op)
        if op.type == "fail" and target is not None and target not in tried and changed(target):
            yield Violation(
                "failure_changed_state",
                f"op {op.op_id} told {op.buyer_id} {op.acts_as()} failed ({op.status}"
                f" {op.error}), but {what}: {target}",
            )


def _order_status(facts: Facts, order_id: str) -> str | None:
    order = facts.orders.get(order_id)
    return order.status if order is not None else None


def _unexplained_holds(facts: Facts) -> Iterator[Violation]:
    """Buyers with more holds than their successful and unknown answers account for."""
    named: set[str] = set()
    unknown: Counter[str] = Counter()
    for op in facts.attempts:
        if op.type == "fail":
            continue
        if op.hold_id is not None:
            named.add(op.hold_id)
        order = facts.orders.get(op.order_id or "")
        if order is not None:
            named.add(order.hold_id)
        if op.type in ("info", "invoke") and op.acts_as() in (HOLD_ACTION, BUY_ACTION):
            unknown[op.buyer_id] += int(op.hold_id is None and op.order_id is None)
    # A failed payment (external provider) leaves its order failed or expired: nothing kept.
    settled = {o.hold_id for o in facts.orders.values() if o.status not in _PAID}
    asked = {op.buyer_id for op in facts.attempts if op.acts_as() in (HOLD_ACTION, BUY_ACTION)}
    extra: dict[str, list[str]] = defaultdict(list)
    for hold in facts.snapshot.holds:
        if hold.buyer_id in asked and hold.hold_id not in named | settled:
            extra[hold.buyer_id].append(hold.hold_id)
    for buyer_id, hold_ids in sorted(extra.items()):
        if len(hold_ids) > unknown[buyer_id]:
            yield Violation(
                "failure_changed_state",
                f"buyer {buyer_id} holds {', '.join(sorted(hold_ids))} that no answer named"
                f" ({unknown[buyer_id]} unknown outcomes)",
            )


def releases_refused_unpaid(facts: Facts) -> Iterator[Violation]:
    """Releases refused (409) of holds that ended given back and never had an order."""
    holds, orders = _holds(facts), _orders_of_holds(facts)
    for op in _acts(facts, RELEASE_ACTION):
        hold = holds.get(op.hold_id or "")
        if (
            op.type == "fail"
            and op.status == 409
            and hold is not None
            and hold.status in _GONE
            and hold.hold_id not in orders
        ):
            yield Violation(
                "release_refused_unpaid",
                f"op {op.op_id} told {op.buyer_id} hold {hold.hold_id} could not be released"
                f" ({op.error}), but it is {hold.status} and was never paid",
            )


# --- reads, and nothing left open -------------------------------------------------------------


def reads_not_as_stored(facts: Facts) -> Iterator[Violation]:
    """Order reads the final state contradicts; 404 for an order the buyer was told about."""
    told_about = {
        op.order_id for op in facts.attempts if op.type == "ok" and op.order_id is not None
    }
    codes: dict[str, set[str]] = defaultdict(set)
    for ticket in facts.snapshot.tickets:
        codes[ticket.order_id].add(ticket.code)
    for op in _acts(facts, READ_ORDER_ACTION):
        order = facts.orders.get(op.order_id or "")
        reason = None
        if op.type == "fail" and op.status == 404 and op.order_id in told_about:
            reason = "it was answered 404"
        elif op.type != "ok" or op.told is None:
            continue
        elif order is None:
            reason = "it does not exist"
        elif order.status not in _LATER.get(op.told, frozenset({op.told})):
            reason = f"it read {op.told}, and it is {order.status} now"
        elif op.told == OrderStatus.CONFIRMED and set(op.ticket_codes) != codes[order.order_id]:
            reason = "it read other ticket codes than the order has"
        if reason is not None:
            yield Violation(
                "read_not_as_stored", f"op {op.op_id} read order {op.order_id}, but {reason}"
            )


def orders_left_pending(facts: Facts) -> Iterator[Violation]:
    """Wallet-paid orders still pending_payment (the provider's are unresolved_payment's)."""
    for order in facts.orders.values():
        if order.status == OrderStatus.PENDING_PAYMENT and not facts.paid_externally(
            order.order_id
        ):
            yield Violation(
                "order_left_pending",
                f"order {order.order_id} of {order.buyer_id} is still {order.status}",
            )


def _on_mixed(rule: Callable[[Facts], Iterable[Violation]]) -> Callable[[Facts], list[Violation]]:
    """`rule`, silent on a history without any of the mixed scenario's actions."""

    def checked(facts: Facts) -> list[Violation]:
        if not any(op.action in _MIXED_ACTIONS for op in facts.history):
            return []
        return list(rule(facts))

    checked.__name__ = rule.__name__
    checked.__doc__ = rule.__doc__
    return checked


MIXED_RULES: tuple[Callable[[Facts], Iterable[Violation]], ...] = tuple(
    _on_mixed(rule)
    for rule in (
        holds_not_as_told,
        cancels_not_refunded,
        releases_not_released,
        failures_changed_state,
        releases_refused_unpaid,
        reads_not_as_stored,
        orders_left_pending,
    )
)
