"""The checker against one small consistent race, then that race broken one way at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest

from lastseat.lab.checker import KINDS, PROVIDER_KINDS, ProviderLedger, Verdict, check
from lastseat.lab.history import Operation, OpType
from lastseat.service.snapshot import (
    AccountRow,
    EntryRow,
    HoldRow,
    OrderRow,
    PoolRow,
    SeatRow,
    Snapshot,
    TicketRow,
    TransferRow,
)

EVENT = "ev1"
SEAT_1, SEAT_2, SEAT_3 = (f"{EVENT}/A/0001/{n:04d}" for n in (1, 2, 3))
POOL = f"{EVENT}/standing"
SEAT_PRICE, UNIT_PRICE, CAPACITY = 5_000, 2_000, 5
CURRENCY = "EUR"
WORLD, REVENUE = f"world:{CURRENCY}", f"revenue:{CURRENCY}"
EMPTY_POOL = PoolRow(POOL, EVENT, CAPACITY, held=0, sold=0, price_minor=UNIT_PRICE)


@dataclass
class World:
    """One race being written: its history, and the rows its final snapshot is made of.

    The ledger (entries and balances) is derived from the transfers, so a world changed only
    through these methods stays consistent; breaking it takes an explicit edit.
    """

    history: list[Operation] = field(default_factory=list)
    seats: dict[str, SeatRow] = field(
        default_factory=lambda: {
            s: SeatRow(s, EVENT, "available", None, SEAT_PRICE) for s in (SEAT_1, SEAT_2, SEAT_3)
        }
    )
    pool: PoolRow = EMPTY_POOL
    holds: list[HoldRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    tickets: list[TicketRow] = field(default_factory=list)
    transfers: list[TransferRow] = field(default_factory=list)

    def top_up(self, buyer: str, amount_minor: int) -> None:
        self.pay("top_up", WORLD, f"wallet:{buyer}", amount_minor, None)

    def pay(self, kind: str, source: str, destination: str, amount: int, order: str | None) -> None:
        transfer_id = f"x{len(self.transfers) + 1}"
        self.transfers.append(
            TransferRow(transfer_id, kind, source, destination, amount, CURRENCY, order)
        )

    def hold_seats(self, buyer: str, hold_id: str, seat_ids: Sequence[str]) -> None:
        self.holds.append(HoldRow(hold_id, buyer, "active", tuple(seat_ids), None, 0, 10**12))
        for seat_id in seat_ids:
            self.seats[seat_id] = replace(self.seats[seat_id], status="held", hold_id=hold_id)

    def hold_units(self, buyer: str, hold_id: str, quantity: int) -> None:
        self.holds.append(HoldRow(hold_id, buyer, "active", (), POOL, quantity, 10**12))
        self.pool = replace(self.pool, held=self.pool.held + quantity)

    def hold(self, hold_id: str) -> HoldRow:
        return next(h for h in self.holds if h.hold_id == hold_id)

    def move_hold(self, hold_id: str, status: str) -> None:
        hold = self.hold(hold_id)
        self.holds[self.holds.index(hold)] = replace(hold, status=status)

    def sell_seats(self, buyer: str, order_id: str, seat_ids: Sequence[str]) -> tuple[str, ...]:
        hold_id = f"h-{order_id}"
        self.holds.append(HoldRow(hold_id, buyer, "converted", tuple(seat_ids), None, 0, 0))
        for seat_id in seat_ids:
            self.seats[seat_id] = replace(self.seats[seat_id], status="sold", hold_id=hold_id)
        return self._confirm(buyer, order_id, [(s, None) for s in seat_ids], SEAT_PRICE)

    def sell_units(self, buyer: str, order_id: str, quantity: int) -> tuple[str, ...]:
        self.holds.append(HoldRow(f"h-{order_id}", buyer, "converted", (), POOL, quantity, 0))
        self.pool = replace(self.pool, sold=self.pool.sold + quantity)
        return self._confirm(buyer, order_id, [(None, POOL)] * quantity, UNIT_PRICE)

    def _confirm(
        self, buyer: str, order_id: str, items: list[tuple[str | None, str | None]], price: int
    ) -> tuple[str, ...]:
        amount = price * len(items)
        self.orders.append(
            OrderRow(order_id, buyer, f"h-{order_id}", "confirmed", amount, CURRENCY, len(items))
        )
        self.pay("purchase", f"wallet:{buyer}", REVENUE, amount, order_id)
        codes = []
        for seat_id, pool_id in items:
            ticket_id = f"t{len(self.tickets) + 1}"
            codes.append(f"code-{ticket_id}")
            self.tickets.append(
                TicketRow(ticket_id, order_id, seat_id, pool_id, codes[-1], "valid")
            )
        return tuple(codes)

    def refund(self, order_id: str) -> None:
        order = self.order(order_id)
        self.orders[self.orders.index(order)] = replace(order, status="refunded")
        self.pay("refund", REVENUE, f"wallet:{order.buyer_id}", order.amount_minor, order_id)
        for i, ticket in enumerate(self.tickets):
            if ticket.order_id == order_id:
                self.tickets[i] = replace(ticket, status="void")
                if ticket.seat_id is not None:
                    self.seats[ticket.seat_id] = replace(
                        self.seats[ticket.seat_id], status="available", hold_id=None
                    )

    def attempt(
        self,
        buyer: str,
        outcome: OpType,
        *,
        action: str = "buy",
        seat_ids: Sequence[str] = (),
        pool_id: str | None = None,
        quantity: int = 0,
        order_id: str | None = None,
        codes: Sequence[str] = (),
        error: str | None = None,
    ) -> None:
        """An invoke saying what was tried, then a completion carrying only the outcome."""
        op_id = f"op{len(self.history)}"
        self.history.append(
            Operation(
                "invoke",
                op_id,
                1,
                buyer,
                len(self.history),
                action,
                seat_ids=tuple(seat_ids),
                pool_id=pool_id,
                quantity=quantity,
            )
        )
        self.history.append(
            Operation(
                outcome,
                op_id,
                1,
                buyer,
                len(self.history),
                order_id=order_id,
                ticket_codes=tuple(codes),
                error=error,
            )
        )

    def order(self, order_id: str) -> OrderRow:
        return next(o for o in self.orders if o.order_id == order_id)

    def snapshot(self) -> Snapshot:
        entries = [
            EntryRow(t.transfer_id, account, sign * t.amount_minor)
            for t in self.transfers
            for account, sign in ((t.source, -1), (t.destination, 1))
        ]
        balances: Counter[str] = Counter()
        for entry in entries:
            balances[entry.account_id] += entry.amount_minor
        accounts = tuple(
            AccountRow(account_id, account_id.split(":")[0], CURRENCY, balance)
            for account_id, balance in sorted(balances.items())
        )
        return Snapshot(
            seats=tuple(self.seats.values()),
            pools=(self.pool,),
            holds=tuple(self.holds),
            orders=tuple(self.orders),
            tickets=tuple(self.tickets),
            accounts=accounts,
            transfers=tuple(self.transfers),
            entries=tuple(entries),
        )

    def check(self, snapshot: Snapshot | None = None) -> Verdict:
        return check(self.history, snapshot or self.snapshot())


def good_world() -> World:
    """Three seats and a pool of 5; alice and bob buy, carol fails, dave's outcome is unknown,
    gus holds 2 units of the pool."""
    w = World()
    w.top_up("alice", 20_000)
    w.top_up("bob", 20_000)
    codes = w.sell_seats("alice", "o1", [SEAT_1])
    w.attempt("alice", "ok", seat_ids=[SEAT_1], order_id="o1", codes=codes)
    codes = w.sell_units("bob", "o2", 2)
    w.attempt("bob", "ok", pool_id=POOL, quantity=2, order_id="o2", codes=codes)
    w.attempt("carol", "fail", seat_ids=[SEAT_1], error="UnavailableError")
    codes = w.sell_seats("bob", "o3", [SEAT_2])
    w.attempt("bob", "ok", seat_ids=[SEAT_2], order_id="o3", codes=codes)
    w.refund("o3")
    w.attempt("bob", "ok", action="refund", order_id="o3")
    # A timeout: dave's hold is still active and he was never told anything.
    w.hold_seats("dave", "h-dave", [SEAT_3])
    w.attempt("dave", "info", seat_ids=[SEAT_3], error="TimeoutError")
    w.hold_units("gus", "h-gus", 2)
    return w


# --- ways to break the good world: each returns the final snapshot -----------------------------


def a_sold_seat_sold_again_to_another_buyer(w: World) -> Snapshot:
    w.top_up("erin", SEAT_PRICE)
    w.sell_seats("erin", "o9", [SEAT_1])
    return w.snapshot()


def a_held_seat_held_again_by_another_buyer(w: World) -> Snapshot:
    w.holds.append(HoldRow("h-erin", "erin", "active", (SEAT_3,), None, 0, 10**12))
    return w.snapshot()


def a_seat_marked_sold_without_a_ticket(w: World) -> Snapshot:
    w.seats[SEAT_3] = replace(w.seats[SEAT_3], status="sold")
    return w.snapshot()


def a_ticketed_seat_marked_available(w: World) -> Snapshot:
    w.seats[SEAT_1] = replace(w.seats[SEAT_1], status="available", hold_id=None)
    return w.snapshot()


def a_pool_selling_more_units_than_its_capacity(w: World) -> Snapshot:
    w.top_up("erin", 4 * UNIT_PRICE)
    w.sell_units("erin", "o9", 4)
    return w.snapshot()


def a_pool_counting_more_held_and_sold_than_its_capacity(w: World) -> Snapshot:
    w.hold_units("hana", "h-hana", 2)
    assert w.pool.held + w.pool.sold > CAPACITY
    return w.snapshot()


def a_pool_sold_counter_that_lost_an_update(w: World) -> Snapshot:
    w.pool = replace(w.pool, sold=1)
    return w.snapshot()


def a_pool_held_counter_below_zero(w: World) -> Snapshot:
    w.pool = replace(w.pool, held=-1)
    return w.snapshot()


def a_pool_held_counter_short_of_its_active_holds(w: World) -> Snapshot:
    w.pool = replace(w.pool, held=w.pool.held - 1)
    return w.snapshot()


def a_released_pool_hold_whose_units_were_not_given_back(w: World) -> Snapshot:
    w.move_hold("h-gus", "released")
    return w.snapshot()


def a_lapsed_pool_hold_whose_units_were_given_back_but_stayed_active(w: World) -> Snapshot:
    # Issue 8's row-lock wedge: a claim counted the lapsed hold's units as free.
    w.pool = replace(w.pool, held=0)
    return w.snapshot()


def a_held_seat_whose_hold_was_released(w: World) -> Snapshot:
    w.move_hold("h-dave", "released")
    return w.snapshot()


def a_held_seat_naming_a_hold_that_does_not_exist(w: World) -> Snapshot:
    w.move_hold("h-dave", "expired")
    w.seats[SEAT_3] = replace(w.seats[SEAT_3], hold_id="h-ghost")
    return w.snapshot()


def an_active_holds_seat_given_back(w: World) -> Snapshot:
    w.seats[SEAT_3] = replace(w.seats[SEAT_3], status="available", hold_id=None)
    return w.snapshot()


def an_active_holds_seat_held_by_another_hold(w: World) -> Snapshot:
    w.seats[SEAT_3] = replace(w.seats[SEAT_3], hold_id="h-o3")
    return w.snapshot()


def a_sold_seat_whose_hold_is_still_active(w: World) -> Snapshot:
    w.move_hold("h-o1", "active")
    return w.snapshot()


def a_sold_seat_naming_a_hold_that_does_not_claim_it(w: World) -> Snapshot:
    w.seats[SEAT_1] = replace(w.seats[SEAT_1], hold_id="h-o3")
    return w.snapshot()


def a_sold_seat_whose_ticket_is_of_another_holds_order(w: World) -> Snapshot:
    # As a paid lapsed hold is re-bought: converted, with no order of its own.
    w.holds.append(HoldRow("h-rebought", "alice", "converted", (SEAT_1,), None, 1, 0))
    w.seats[SEAT_1] = replace(w.seats[SEAT_1], hold_id="h-rebought")
    return w.snapshot()


def an_order_charged_twice(w: World) -> Snapshot:
    w.pay("purchase", "wallet:alice", REVENUE, SEAT_PRICE, "o1")
    return w.snapshot()


def an_order_refunded_twice(w: World) -> Snapshot:
    w.pay("refund", REVENUE, "wallet:bob", SEAT_PRICE, "o3")
    return w.snapshot()


def a_charge_kept_for_a_failed_order(w: World) -> Snapshot:
    w.top_up("carol", SEAT_PRICE)
    w.orders.append(OrderRow("o9", "carol", "h-o9", "failed", SEAT_PRICE, CURRENCY, 1))
    w.pay("purchase", "wallet:carol", REVENUE, SEAT_PRICE, "o9")
    return w.snapshot()


def a_refunded_order_without_its_refund_transfer(w: World) -> Snapshot:
    w.transfers = [t for t in w.transfers if t.kind != "refund"]
    return w.snapshot()


def a_refund_for_an_order_still_confirmed(w: World) -> Snapshot:
    w.pay("refund", REVENUE, "wallet:alice", SEAT_PRICE, "o1")
    return w.snapshot()


def a_confirmed_order_never_charged(w: World) -> Snapshot:
    w.transfers = [t for t in w.transfers if (t.kind, t.order_id) != ("purchase", "o1")]
    return w.snapshot()


def a_refund_that_left_its_ticket_valid_and_its_seat_sold(w: World) -> Snapshot:
    w.tickets = [replace(t, status="valid") if t.order_id == "o3" else t for t in w.tickets]
    w.seats[SEAT_2] = replace(w.seats[SEAT_2], status="sold", hold_id="h-o3")
    return w.snapshot()


def an_account_balance_that_is_not_its_entries(w: World) -> Snapshot:
    snapshot = w.snapshot()
    accounts = tuple(
        replace(a, balance_minor=a.balance_minor + 1) if a.account_id == REVENUE else a
        for a in snapshot.accounts
    )
    return replace(snapshot, accounts=accounts)


def a_transfer_recorded_by_one_entry(w: World) -> Snapshot:
    snapshot = w.snapshot()
    return replace(snapshot, entries=snapshot.entries[1:])


def entries_posted_without_a_transfer(w: World) -> Snapshot:
    snapshot = w.snapshot()
    ghost = (EntryRow("ghost", "wallet:alice", -1), EntryRow("ghost", "wallet:bob", 1))
    return replace(snapshot, entries=snapshot.entries + ghost)


def a_wallet_overdrawn_by_a_purchase(w: World) -> Snapshot:
    w.sell_units("erin", "o9", 1)
    return w.snapshot()


def a_success_whose_order_does_not_exist(w: World) -> Snapshot:
    w.attempt("erin", "ok", seat_ids=[SEAT_3], order_id="o-none", codes=["code-none"])
    return w.snapshot()


def a_success_told_codes_that_are_not_its_tickets(w: World) -> Snapshot:
    w.history[1] = replace(w.history[1], ticket_codes=("code-guessed",))
    return w.snapshot()


def a_pool_success_told_one_code_too_few(w: World) -> Snapshot:
    w.history[3] = replace(w.history[3], ticket_codes=w.history[3].ticket_codes[:1])
    return w.snapshot()


def a_group_order_that_lost_a_ticket(w: World) -> Snapshot:
    w.tickets = [replace(t, status="void") if t.code == "code-t3" else t for t in w.tickets]
    w.pool = replace(w.pool, sold=1)
    return w.snapshot()


def a_success_refunded_without_the_buyer_asking(w: World) -> Snapshot:
    refund_ops = {op.op_id for op in w.history if op.action == "refund"}
    w.history = [op for op in w.history if op.op_id not in refund_ops]
    return w.snapshot()


def a_buyer_told_only_failure_who_holds_an_order(w: World) -> Snapshot:
    w.top_up("carol", UNIT_PRICE)
    w.sell_units("carol", "o9", 1)
    return w.snapshot()


def a_failure_whose_order_was_confirmed(w: World) -> Snapshot:
    # bob's pool purchase; bob's other successes must not hide it.
    w.history[3] = replace(w.history[3], type="fail", ticket_codes=(), error="PaymentError")
    return w.snapshot()


def an_order_charged_more_than_its_price(w: World) -> Snapshot:
    w.transfers = [
        replace(t, amount_minor=SEAT_PRICE + 1) if t.order_id == "o1" else t for t in w.transfers
    ]
    return w.snapshot()


def two_tickets_sharing_one_code(w: World) -> Snapshot:
    w.tickets = [replace(t, code="code-t1") if t.order_id == "o3" else t for t in w.tickets]
    return w.snapshot()


def an_invoke_that_never_completed(w: World) -> Snapshot:
    w.history.append(Operation("invoke", "op-lost", 2, "erin", 99, seat_ids=(SEAT_3,)))
    return w.snapshot()


def a_completion_that_was_never_invoked(w: World) -> Snapshot:
    w.history.append(Operation("fail", "op-stray", 2, "erin", 99, error="UnavailableError"))
    return w.snapshot()


def an_operation_completed_twice(w: World) -> Snapshot:
    carol_failed = next(op for op in w.history if op.type == "fail")
    w.history.append(replace(carol_failed, time_ns=99))
    return w.snapshot()


BROKEN_WORLDS: list[tuple[Callable[[World], Snapshot], set[str]]] = [
    (a_sold_seat_sold_again_to_another_buyer, {"seat_sold_twice"}),
    (a_held_seat_held_again_by_another_buyer, {"seat_sold_twice"}),
    (a_seat_marked_sold_without_a_ticket, {"seat_state_mismatch"}),
    (a_ticketed_seat_marked_available, {"seat_state_mismatch"}),
    (a_pool_selling_more_units_than_its_capacity, {"pool_over_capacity"}),
    (a_pool_counting_more_held_and_sold_than_its_capacity, {"pool_over_capacity"}),
    (a_pool_sold_counter_that_lost_an_update, {"pool_count_mismatch"}),
    (a_pool_held_counter_below_zero, {"pool_held_mismatch"}),
    (a_pool_held_counter_short_of_its_active_holds, {"pool_held_mismatch"}),
    (a_released_pool_hold_whose_units_were_not_given_back, {"pool_held_mismatch"}),
    (a_lapsed_pool_hold_whose_units_were_given_back_but_stayed_active, {"pool_held_mismatch"}),
    (a_held_seat_whose_hold_was_released, {"seat_hold_mismatch"}),
    (a_held_seat_naming_a_hold_that_does_not_exist, {"seat_hold_mismatch"}),
    (an_active_holds_seat_given_back, {"seat_hold_mismatch"}),
    (an_active_holds_seat_held_by_another_hold, {"seat_hold_mismatch"}),
    (a_sold_seat_whose_hold_is_still_active, {"seat_hold_mismatch"}),
    (a_sold_seat_naming_a_hold_that_does_not_claim_it, {"seat_hold_mismatch"}),
    (a_sold_seat_whose_ticket_is_of_another_holds_order, {"seat_hold_mismatch"}),
    # The buyer's money no longer matches their confirmed orders either.
    (an_order_charged_twice, {"double_charge", "standing_charge"}),
    (an_order_refunded_twice, {"double_charge", "standing_charge"}),
    (a_charge_kept_for_a_failed_order, {"charge_without_order", "standing_charge"}),
    (a_refunded_order_without_its_refund_transfer, {"charge_without_order", "standing_charge"}),
    (a_refund_for_an_order_still_confirmed, {"charge_without_order", "standing_charge"}),
    (a_confirmed_order_never_charged, {"confirmed_without_charge", "standing_charge"}),
    (a_refund_that_left_its_ticket_valid_and_its_seat_sold, {"ticket_without_order"}),
    (an_account_balance_that_is_not_its_entries, {"money_not_conserved"}),
    (a_transfer_recorded_by_one_entry, {"money_not_conserved"}),
    (entries_posted_without_a_transfer, {"money_not_conserved"}),
    (a_wallet_overdrawn_by_a_purchase, {"negative_balance"}),
    (a_success_whose_order_does_not_exist, {"missing_tickets"}),
    (a_success_told_codes_that_are_not_its_tickets, {"missing_tickets"}),
    (a_pool_success_told_one_code_too_few, {"missing_tickets"}),
    (a_group_order_that_lost_a_ticket, {"missing_tickets"}),
    (a_success_refunded_without_the_buyer_asking, {"missing_tickets"}),
    (a_buyer_told_only_failure_who_holds_an_order, {"failure_with_tickets"}),
    (a_failure_whose_order_was_confirmed, {"failure_with_tickets"}),
    (an_order_charged_more_than_its_price, {"standing_charge"}),
    (two_tickets_sharing_one_code, {"duplicate_ticket_code"}),
    (an_invoke_that_never_completed, {"incomplete_operation"}),
    (a_completion_that_was_never_invoked, {"incomplete_operation"}),
    (an_operation_completed_twice, {"incomplete_operation"}),
]


def test_the_good_world_passes_with_no_violations() -> None:
    w = good_world()

    verdict = check(iter(w.history), w.snapshot())

    assert verdict.violations == ()
    assert verdict.ok
    assert verdict.kinds() == set()


@pytest.mark.parametrize(
    ("breakage", "kinds"),
    [pytest.param(breakage, kinds, id=breakage.__name__) for breakage, kinds in BROKEN_WORLDS],
)
def test_a_broken_world_is_reported_with_exactly_its_kinds(
    breakage: Callable[[World], Snapshot], kinds: set[str]
) -> None:
    w = good_world()

    verdict = w.check(breakage(w))

    assert verdict.kinds() == kinds
    assert not verdict.ok


def test_every_wallet_violation_kind_is_caught_in_some_broken_world() -> None:
    # The kinds only externally paid races can break: test_checker_payments.py.
    assert set().union(*(kinds for _, kinds in BROKEN_WORLDS)) == set(KINDS) - PROVIDER_KINDS


@pytest.mark.parametrize(
    ("breakage", "kinds"),
    [pytest.param(breakage, kinds, id=breakage.__name__) for breakage, kinds in BROKEN_WORLDS],
)
def test_a_wallet_race_checks_the_same_given_an_empty_provider_ledger(
    breakage: Callable[[World], Snapshot], kinds: set[str]
) -> None:
    w = good_world()
    snapshot = breakage(w)

    with_provider = check(w.history, snapshot, provider=ProviderLedger())

    assert with_provider == w.check(snapshot)
    assert with_provider.kinds() == kinds


def test_a_violation_names_the_ids_involved() -> None:
    w = good_world()

    verdict = w.check(a_sold_seat_sold_again_to_another_buyer(w))

    details = " / ".join(v.detail for v in verdict.violations)
    assert SEAT_1 in details
    assert "h-o1" in details
    assert "h-o9" in details


def test_the_good_world_counts_its_valid_tickets_and_no_oversell_or_double_charge() -> None:
    verdict = good_world().check()

    assert (verdict.tickets_sold, verdict.oversold, verdict.double_charges) == (3, 0, 0)


def test_oversold_counts_extra_seat_tickets_and_pool_units_beyond_capacity() -> None:
    w = good_world()
    for buyer in ("erin", "frank"):
        w.top_up(buyer, SEAT_PRICE)
        w.sell_seats(buyer, f"o-{buyer}", [SEAT_1])
    w.top_up("gina", 4 * UNIT_PRICE)
    w.sell_units("gina", "o-gina", 4)

    verdict = w.check()

    assert verdict.oversold == 2 + 1
    assert verdict.tickets_sold == 3 + 2 + 4


def test_double_charges_counts_the_extra_purchases_of_each_order() -> None:
    w = good_world()
    for order_id, buyer in (("o1", "alice"), ("o1", "alice"), ("o2", "bob")):
        w.pay("purchase", f"wallet:{buyer}", REVENUE, 1, order_id)

    verdict = w.check()

    assert verdict.double_charges == 3


def test_a_second_refund_is_a_double_charge_violation_but_not_counted_as_one() -> None:
    w = good_world()

    verdict = w.check(an_order_refunded_twice(w))

    assert "double_charge" in verdict.kinds()
    assert verdict.double_charges == 0


@pytest.mark.parametrize("outcome", ["info", "invoke"])
def test_an_unknown_outcome_spares_its_buyer_from_failure_with_tickets(outcome: OpType) -> None:
    w = good_world()
    a_buyer_told_only_failure_who_holds_an_order(w)
    carol_failed = next(op for op in w.history if op.type == "fail")
    w.history.append(replace(carol_failed, type="invoke", op_id="op-carol-2"))
    if outcome != "invoke":
        w.history.append(replace(carol_failed, type=outcome, op_id="op-carol-2"))

    verdict = w.check()

    assert "failure_with_tickets" not in verdict.kinds()


Move = Callable[[Operation, Operation], tuple[Operation, Operation]]


@pytest.mark.parametrize(
    "move",
    [
        pytest.param(
            lambda invoke, done: (replace(invoke, seat_ids=()), replace(done, seat_ids=(SEAT_1,))),
            id="seats_on_the_completion",
        ),
        pytest.param(
            lambda invoke, done: (replace(invoke, order_id="o1"), replace(done, order_id=None)),
            id="order_on_the_invoke",
        ),
    ],
)
def test_claim_fields_may_come_on_either_line_of_an_operation(move: Move) -> None:
    w = good_world()
    w.history[0], w.history[1] = move(w.history[0], w.history[1])

    assert w.check().ok


def test_a_buyer_told_only_a_failure_that_was_confirmed_is_reported_once() -> None:
    w = good_world()
    w.history[1] = replace(w.history[1], type="fail", ticket_codes=(), error="PaymentError")

    verdict = w.check()

    assert [v.kind for v in verdict.violations] == ["failure_with_tickets"]


def test_entries_of_an_unknown_transfer_on_an_unknown_account_are_both_named() -> None:
    w = good_world()
    snapshot = w.snapshot()
    ghost = (EntryRow("ghost", "wallet:nobody", -1), EntryRow("ghost", "wallet:alice", 1))

    verdict = w.check(replace(snapshot, entries=snapshot.entries + ghost))

    details = [v.detail for v in verdict.violations]
    assert any("unknown transfer ghost" in d for d in details)
    assert any("unknown account wallet:nobody" in d for d in details)
    assert verdict.kinds() == {"money_not_conserved"}


def test_a_refunded_seat_may_be_sold_again() -> None:
    w = good_world()
    w.top_up("erin", SEAT_PRICE)
    codes = w.sell_seats("erin", "o9", [SEAT_2])
    w.attempt("erin", "ok", seat_ids=[SEAT_2], order_id="o9", codes=codes)

    assert w.check().ok
