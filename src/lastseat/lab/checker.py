"""The race lab's checker: is a recorded history, plus the final database state, correct?

`check` is pure: it reads the history of buyer attempts and a `Snapshot`, and returns a
`Verdict` with every violation found. Kinds, by the DESIGN.md §3 invariant they guard:

invariant 1 - a seat is sold once
    seat_sold_twice           a seat with two valid tickets, or in two live holds at once
    seat_state_mismatch       a seat `sold` with no valid ticket, or with one but not `sold`
invariant 2 - a pool never oversells
    pool_over_capacity        more valid tickets than capacity, or held + sold above capacity
    pool_count_mismatch       the `sold` counter is not the valid tickets (a lost update),
                              or the `held` counter is below zero
invariant 3 - one charge per confirmed order
    double_charge             an order with two purchase transfers, or two refunds
    charge_without_order      a purchase for a missing or never-confirmed order, a refund for
                              an order that is not refunded, a refunded order with no refund
    confirmed_without_charge  a confirmed (or refunded) order with no purchase transfer
    ticket_without_order      a valid ticket whose order is missing or not confirmed
invariant 4 - money is conserved
    money_not_conserved       a currency whose balances do not sum to zero, a transfer not
                              recorded as exactly its two entries, a balance not its entries' sum
    negative_balance          an account other than `world` below zero
invariant 5 - what a buyer was told is true
    missing_tickets           an `ok` claim whose order is not confirmed or does not hold
                              exactly the claimed tickets and codes; a partial confirmed order
    failure_with_tickets      a buyer told only failures who holds a confirmed order or valid
                              tickets, or a `fail` whose order is confirmed
    standing_charge           a buyer whose net purchases differ from their confirmed orders
records the checks above rely on
    duplicate_ticket_code     two tickets with one code
    incomplete_operation      an op_id without exactly one invoke and one completion

An `info` completion (outcome unknown) needs no tickets and spares its buyer from
failure_with_tickets; so does an invoke that never completed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from lastseat.domain.holds import HoldStatus
from lastseat.domain.inventory import SeatStatus
from lastseat.domain.ledger import AccountKind, TransferKind
from lastseat.domain.orders import OrderStatus
from lastseat.domain.tickets import TicketStatus
from lastseat.lab.history import Operation
from lastseat.service.snapshot import OrderRow, Snapshot, TicketRow, TransferRow

KINDS: tuple[str, ...] = (
    "seat_sold_twice",
    "seat_state_mismatch",
    "pool_over_capacity",
    "pool_count_mismatch",
    "double_charge",
    "charge_without_order",
    "confirmed_without_charge",
    "ticket_without_order",
    "money_not_conserved",
    "negative_balance",
    "missing_tickets",
    "failure_with_tickets",
    "standing_charge",
    "duplicate_ticket_code",
    "incomplete_operation",
)

REFUND_ACTION = "refund"
_WALLET_PREFIX = "wallet:"
# Orders whose money was taken and may stay recorded: kept, or kept and given back.
_CHARGED = frozenset({OrderStatus.CONFIRMED, OrderStatus.REFUNDED})

_Target = tuple[str, str]  # ("seat", seat_id) or ("pool", pool_id): what one ticket is for


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, with the ids that break it."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything wrong with one race, plus the headline counts a report prints."""

    violations: tuple[Violation, ...]
    tickets_sold: int
    oversold: int
    double_charges: int

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.violations

    def kinds(self) -> set[str]:
        """The distinct kinds of violation found."""
        return {v.kind for v in self.violations}


@dataclass(frozen=True, slots=True)
class _Facts:
    """The inputs, indexed once so every rule stays a short loop."""

    history: tuple[Operation, ...]
    attempts: tuple[Operation, ...]
    snapshot: Snapshot
    orders: Mapping[str, OrderRow]
    valid_by_order: Mapping[str, Sequence[TicketRow]]
    valid_by_seat: Mapping[str, Sequence[TicketRow]]
    valid_by_pool: Mapping[str, int]
    money_by_order: Mapping[tuple[str, str], Sequence[TransferRow]]  # (order_id, kind)


def check(history: Iterable[Operation], snapshot: Snapshot) -> Verdict:
    """Every invariant violation in one race's history and final state, with headline counts."""
    facts = _facts(tuple(history), snapshot)
    violations = tuple(v for rule in _RULES for v in rule(facts))
    return Verdict(
        violations=violations,
        tickets_sold=sum(len(tickets) for tickets in facts.valid_by_order.values()),
        oversold=_oversold(facts),
        double_charges=sum(
            len(transfers) - 1
            for (_, kind), transfers in facts.money_by_order.items()
            if kind == TransferKind.PURCHASE and len(transfers) > 1
        ),
    )


def _facts(history: tuple[Operation, ...], snapshot: Snapshot) -> _Facts:
    valid = [t for t in snapshot.tickets if t.status == TicketStatus.VALID]
    by_order: dict[str, list[TicketRow]] = defaultdict(list)
    by_seat: dict[str, list[TicketRow]] = defaultdict(list)
    for ticket in valid:
        by_order[ticket.order_id].append(ticket)
        if ticket.seat_id is not None:
            by_seat[ticket.seat_id].append(ticket)
    money: dict[tuple[str, str], list[TransferRow]] = defaultdict(list)
    for transfer in snapshot.transfers:
        if transfer.order_id is not None:
            money[(transfer.order_id, transfer.kind)].append(transfer)
    return _Facts(
        history=history,
        attempts=_attempts(history),
        snapshot=snapshot,
        orders={o.order_id: o for o in snapshot.orders},
        valid_by_order=dict(by_order),
        valid_by_seat=dict(by_seat),
        valid_by_pool=Counter(t.pool_id for t in valid if t.pool_id is not None),
        money_by_order=dict(money),
    )


def _attempts(history: tuple[Operation, ...]) -> tuple[Operation, ...]:
    """One line per op_id: its completion, or its bare invoke while it never completed."""
    invokes: dict[str, Operation] = {}
    completions: dict[str, Operation] = {}
    for op in history:
        (invokes if op.type == "invoke" else completions).setdefault(op.op_id, op)
    merged = []
    for op_id in dict.fromkeys(op.op_id for op in history):
        invoke, done = invokes.get(op_id), completions.get(op_id)
        if done is None or invoke is None:
            merged.append(done or invokes[op_id])
            continue
        # The invoke says what was tried; a completion may repeat it or carry only the outcome.
        merged.append(
            replace(
                done,
                action=invoke.action,
                seat_ids=done.seat_ids or invoke.seat_ids,
                pool_id=done.pool_id or invoke.pool_id,
                quantity=done.quantity or invoke.quantity,
                order_id=done.order_id or invoke.order_id,
            )
        )
    return tuple(merged)


def _oversold(facts: _Facts) -> int:
    """Tickets issued beyond what exists: extra tickets per seat, units beyond each pool."""
    seats = sum(len(tickets) - 1 for tickets in facts.valid_by_seat.values())
    pools = sum(
        max(0, facts.valid_by_pool.get(pool.pool_id, 0) - pool.capacity)
        for pool in facts.snapshot.pools
    )
    return seats + pools


# --- invariant 1: a seat is sold once -------------------------------------------------------


def _seats_sold_twice(facts: _Facts) -> Iterator[Violation]:
    for seat_id, tickets in sorted(facts.valid_by_seat.items()):
        if len(tickets) > 1:
            ids = ", ".join(sorted(t.ticket_id for t in tickets))
            yield Violation("seat_sold_twice", f"seat {seat_id} has valid tickets {ids}")
    for seat_id, hold_ids in sorted(_live_claims(facts).items()):
        if len(hold_ids) > 1:
            ids = ", ".join(sorted(hold_ids))
            yield Violation("seat_sold_twice", f"seat {seat_id} is claimed by live holds {ids}")


def _live_claims(facts: _Facts) -> dict[str, list[str]]:
    """Seat id -> the holds still claiming it: active ones, and those a confirmed order kept.

    An active hold past its expiry still counts: whoever takes its seat must first mark it
    expired, or a late payment on it would sell the seat a second time.
    """
    kept = {o.hold_id for o in facts.orders.values() if o.status == OrderStatus.CONFIRMED}
    claims: dict[str, list[str]] = defaultdict(list)
    for hold in facts.snapshot.holds:
        if hold.status == HoldStatus.ACTIVE or (
            hold.status == HoldStatus.CONVERTED and hold.hold_id in kept
        ):
            for seat_id in hold.seat_ids:
                claims[seat_id].append(hold.hold_id)
    return claims


def _seat_state_mismatches(facts: _Facts) -> Iterator[Violation]:
    # Two or more valid tickets are seat_sold_twice's to report, whatever the status says.
    statuses = {seat.seat_id: seat.status for seat in facts.snapshot.seats}
    for seat_id in sorted(statuses.keys() | facts.valid_by_seat.keys()):
        status = statuses.get(seat_id, "unknown")
        valid = len(facts.valid_by_seat.get(seat_id, ()))
        if status == SeatStatus.SOLD and valid == 0:
            yield Violation("seat_state_mismatch", f"seat {seat_id} is sold without a ticket")
        elif status != SeatStatus.SOLD and valid > 0:
            yield Violation(
                "seat_state_mismatch", f"seat {seat_id} is {status} but has a valid ticket"
            )


# --- invariant 2: a pool never oversells ------------------------------------------------------


def _pools_over_capacity(facts: _Facts) -> Iterator[Violation]:
    for pool in facts.snapshot.pools:
        valid = facts.valid_by_pool.get(pool.pool_id, 0)
        if valid > pool.capacity:
            yield Violation(
                "pool_over_capacity",
                f"pool {pool.pool_id} has {valid} valid tickets for capacity {pool.capacity}",
            )
        if pool.held + pool.sold > pool.capacity:
            yield Violation(
                "pool_over_capacity",
                f"pool {pool.pool_id} counts {pool.held} held + {pool.sold} sold"
                f" for capacity {pool.capacity}",
            )


def _pool_count_mismatches(facts: _Facts) -> Iterator[Violation]:
    for pool in facts.snapshot.pools:
        valid = facts.valid_by_pool.get(pool.pool_id, 0)
        if pool.sold != valid:
            yield Violation(
                "pool_count_mismatch",
                f"pool {pool.pool_id} counts {pool.sold} sold but has {valid} valid tickets",
            )
        if pool.held < 0:
            yield Violation("pool_count_mismatch", f"pool {pool.pool_id} counts {pool.held} held")


# --- invariant 3: one charge per confirmed order ----------------------------------------------


def _double_charges(facts: _Facts) -> Iterator[Violation]:
    for (order_id, kind), transfers in sorted(facts.money_by_order.items()):
        if kind in (TransferKind.PURCHASE, TransferKind.REFUND) and len(transfers) > 1:
            ids = ", ".join(sorted(t.transfer_id for t in transfers))
            yield Violation("double_charge", f"order {order_id} has {kind} transfers {ids}")


def _charges_without_order(facts: _Facts) -> Iterator[Violation]:
    for transfer in facts.snapshot.transfers:
        order = facts.orders.get(transfer.order_id or "")
        state = order.status if order is not None else "missing"
        if (transfer.kind == TransferKind.PURCHASE and state not in _CHARGED) or (
            transfer.kind == TransferKind.REFUND and state != OrderStatus.REFUNDED
        ):
            yield Violation(
                "charge_without_order",
                f"{transfer.kind} {transfer.transfer_id} is for order {transfer.order_id},"
                f" which is {state}",
            )
    for order in facts.orders.values():
        if order.status == OrderStatus.REFUNDED and not _money(facts, order, TransferKind.REFUND):
            yield Violation(
                "charge_without_order", f"order {order.order_id} is refunded without a refund"
            )


def _confirmed_without_charge(facts: _Facts) -> Iterator[Violation]:
    for order in facts.orders.values():
        if order.status in _CHARGED and not _money(facts, order, TransferKind.PURCHASE):
            yield Violation(
                "confirmed_without_charge",
                f"order {order.order_id} of {order.buyer_id} is {order.status} but was never"
                " charged",
            )


def _tickets_without_order(facts: _Facts) -> Iterator[Violation]:
    for order_id, tickets in sorted(facts.valid_by_order.items()):
        order = facts.orders.get(order_id)
        if order is None or order.status != OrderStatus.CONFIRMED:
            state = order.status if order is not None else "missing"
            yield Violation(
                "ticket_without_order",
                f"order {order_id} is {state} but has {len(tickets)} valid tickets",
            )


def _money(facts: _Facts, order: OrderRow, kind: TransferKind) -> Sequence[TransferRow]:
    return facts.money_by_order.get((order.order_id, kind), ())


# --- invariant 4: money is conserved ----------------------------------------------------------


def _money_not_conserved(facts: _Facts) -> Iterator[Violation]:
    totals: Counter[str] = Counter()
    for account in facts.snapshot.accounts:
        totals[account.currency] += account.balance_minor
    for currency, total in sorted(totals.items()):
        if total != 0:
            yield Violation("money_not_conserved", f"{currency} accounts sum to {total}, not 0")
    yield from _malformed_transfers(facts)
    yield from _balances_off_entries(facts)


def _malformed_transfers(facts: _Facts) -> Iterator[Violation]:
    entries: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for entry in facts.snapshot.entries:
        entries[entry.transfer_id].append((entry.account_id, entry.amount_minor))
    for t in facts.snapshot.transfers:
        expected = sorted([(t.source, -t.amount_minor), (t.destination, t.amount_minor)])
        actual = sorted(entries.pop(t.transfer_id, []))
        if actual != expected:
            yield Violation(
                "money_not_conserved",
                f"transfer {t.transfer_id} is recorded as {actual}, not {expected}",
            )
    # Whatever is left was posted without any transfer to explain it.
    for transfer_id in sorted(entries):
        yield Violation("money_not_conserved", f"entries of unknown transfer {transfer_id}")


def _balances_off_entries(facts: _Facts) -> Iterator[Violation]:
    sums: Counter[str] = Counter()
    for entry in facts.snapshot.entries:
        sums[entry.account_id] += entry.amount_minor
    balances = {a.account_id: a.balance_minor for a in facts.snapshot.accounts}
    for account_id in sorted(balances.keys() | sums.keys()):
        balance = balances.get(account_id)
        if balance is None:
            yield Violation("money_not_conserved", f"entries name unknown account {account_id}")
        elif balance != sums[account_id]:
            yield Violation(
                "money_not_conserved",
                f"account {account_id} holds {balance} but its entries sum to {sums[account_id]}",
            )


def _negative_balances(facts: _Facts) -> Iterator[Violation]:
    for account in facts.snapshot.accounts:
        if account.kind != AccountKind.WORLD and account.balance_minor < 0:
            yield Violation(
                "negative_balance",
                f"{account.kind} account {account.account_id} holds {account.balance_minor}",
            )


# --- invariant 5: what a buyer was told is true -----------------------------------------------


def _missing_tickets(facts: _Facts) -> Iterator[Violation]:
    # A success later refunded at the buyer's own request rightly has only void tickets.
    refunds_asked = {
        op.order_id for op in facts.attempts if op.action == REFUND_ACTION and op.type != "fail"
    }
    for op in facts.attempts:
        if op.type == "ok" and op.action != REFUND_ACTION and (op.seat_ids or op.pool_id):
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


def _unbacked_success(facts: _Facts, op: Operation, refunds_asked: set[str | None]) -> str | None:
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


def _failures_with_tickets(facts: _Facts) -> Iterator[Violation]:
    reported: set[str] = set()
    for op in facts.attempts:
        order = facts.orders.get(op.order_id or "")
        if op.type == "fail" and order is not None and order.status == OrderStatus.CONFIRMED:
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


def _holdings(facts: _Facts) -> dict[str, list[str]]:
    """Buyer id -> their orders that are confirmed or carry valid tickets."""
    holdings: dict[str, list[str]] = defaultdict(list)
    for order in facts.orders.values():
        if order.status == OrderStatus.CONFIRMED or facts.valid_by_order.get(order.order_id):
            holdings[order.buyer_id].append(order.order_id)
    return holdings


def _standing_charges(facts: _Facts) -> Iterator[Violation]:
    paid: Counter[tuple[str, str]] = Counter()
    for t in facts.snapshot.transfers:
        if t.kind == TransferKind.PURCHASE:
            paid[(_payer(facts, t.order_id, t.source), t.currency)] += t.amount_minor
        elif t.kind == TransferKind.REFUND:
            paid[(_payer(facts, t.order_id, t.destination), t.currency)] -= t.amount_minor
    owed: Counter[tuple[str, str]] = Counter()
    for order in facts.orders.values():
        if order.status == OrderStatus.CONFIRMED:
            owed[(order.buyer_id, order.currency)] += order.amount_minor
    for buyer_id, currency in sorted(paid.keys() | owed.keys()):
        difference = paid[(buyer_id, currency)] - owed[(buyer_id, currency)]
        if difference != 0:
            yield Violation(
                "standing_charge",
                f"buyer {buyer_id} paid {difference:+d} {currency} beyond their confirmed orders",
            )


def _payer(facts: _Facts, order_id: str | None, account_id: str) -> str:
    """Who paid: the order's buyer, else the owner of the wallet the money touched."""
    order = facts.orders.get(order_id or "")
    if order is not None:
        return order.buyer_id
    return account_id.removeprefix(_WALLET_PREFIX)


# --- records ----------------------------------------------------------------------------------


def _duplicate_ticket_codes(facts: _Facts) -> Iterator[Violation]:
    holders: dict[str, list[str]] = defaultdict(list)
    for ticket in facts.snapshot.tickets:
        holders[ticket.code].append(ticket.ticket_id)
    for code, ticket_ids in sorted(holders.items()):
        if len(ticket_ids) > 1:
            yield Violation(
                "duplicate_ticket_code",
                f"tickets {', '.join(sorted(ticket_ids))} share code {code}",
            )


def _incomplete_operations(facts: _Facts) -> Iterator[Violation]:
    invokes = Counter(op.op_id for op in facts.history if op.type == "invoke")
    completions = Counter(op.op_id for op in facts.history if op.type != "invoke")
    for op_id in dict.fromkeys(op.op_id for op in facts.history):
        if invokes[op_id] != 1 or completions[op_id] != 1:
            yield Violation(
                "incomplete_operation",
                f"op {op_id} has {invokes[op_id]} invokes and {completions[op_id]} completions",
            )


_RULES: tuple[Callable[[_Facts], Iterable[Violation]], ...] = (
    _seats_sold_twice,
    _seat_state_mismatches,
    _pools_over_capacity,
    _pool_count_mismatches,
    _double_charges,
    _charges_without_order,
    _confirmed_without_charge,
    _tickets_without_order,
    _money_not_conserved,
    _negative_balances,
    _missing_tickets,
    _failures_with_tickets,
    _standing_charges,
    _duplicate_ticket_codes,
    _incomplete_operations,
)
