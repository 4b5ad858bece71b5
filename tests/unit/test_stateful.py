"""Random sequences of booking operations on one SQLite store, invariants checked after each.

Hypothesis drives buyers through quick buys, holds, payments, releases, cancellations, clock
moves and sweeper runs; after every step the whole database (a Snapshot) must satisfy
DESIGN.md §3: no seat sold twice, pool counters that add up, money conserved, one charge per
confirmed order and one refund per refunded one. One TestCase per guarded strategy.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import unittest
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
)

from lastseat.bootstrap import build, open_store
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import (
    HoldExpiredError,
    InsufficientFundsError,
    InvalidTransitionError,
    NotFoundError,
    UnavailableError,
)
from lastseat.domain.holds import PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.service.snapshot import Snapshot

EUR = "EUR"
EVENT = "ev1"
POOL = f"{EVENT}/standing"
SEAT_IDS = tuple(seat_id_for(EVENT, "A", 1, n) for n in range(1, 5))
CAPACITY = 3
SEAT_PRICE = 1_000
UNIT_PRICE = 400
BUYERS = ("alice", "bob", "carol")
WALLET = 2_500  # two seats or a few units: running out of money is part of the game
# Retries stay bounded, but a unit test has no reason to sleep between them.
NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0)
EXPECTED = (
    UnavailableError,
    InsufficientFundsError,
    HoldExpiredError,
    InvalidTransitionError,
    NotFoundError,
)

buyers = st.sampled_from(BUYERS)
seat_groups = st.lists(st.sampled_from(SEAT_IDS), min_size=1, max_size=2, unique=True)
quantities = st.integers(1, CAPACITY)
ttls = st.integers(1, 20).map(lambda minutes: timedelta(minutes=minutes))


class BookingMachine(RuleBasedStateMachine):
    """One event, three buyers, one store; the strategy is chosen by the subclass."""

    strategy_name: ClassVar[str] = "atomic"

    holds = Bundle("holds")
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="lastseat-stateful-")
        # Durability is not under test here; fewer fsyncs keep the machine fast.
        self.store = open_store(str(Path(self.directory) / "t.db"), synchronous="OFF")
        self.clock = FakeClock()
        self.services = build(self.store, self.strategy_name, clock=self.clock, retry=NO_WAIT)
        self.booking = self.services.booking
        self.services.catalog.create_event(
            build_event(
                EVENT,
                "Show",
                EUR,
                [SeatBlock("A", 1, len(SEAT_IDS), Money(SEAT_PRICE, EUR))],
                [("standing", CAPACITY, Money(UNIT_PRICE, EUR))],
            )
        )
        for buyer in BUYERS:
            self.services.wallets.open_wallet(buyer, EUR)
            self.services.wallets.top_up(buyer, Money(WALLET, EUR))

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- rules -----------------------------------------------------------------------------

    @rule(target=orders, buyer=buyers, seat_ids=seat_groups)
    def quick_buy_seats(self, buyer: str, seat_ids: list[str]) -> object:
        try:
            purchase = self.booking.quick_buy(buyer, SeatClaim(EVENT, tuple(seat_ids)))
        except EXPECTED:
            return multiple()
        return (buyer, purchase.order.order_id)

    @rule(target=orders, buyer=buyers, quantity=quantities)
    def quick_buy_units(self, buyer: str, quantity: int) -> object:
        try:
            purchase = self.booking.quick_buy(buyer, PoolClaim(EVENT, POOL, quantity))
        except EXPECTED:
            return multiple()
        return (buyer, purchase.order.order_id)

    @rule(target=holds, buyer=buyers, seat_ids=seat_groups, ttl=ttls)
    def hold_seats(self, buyer: str, seat_ids: list[str], ttl: timedelta) -> object:
        try:
            hold = self.booking.place_hold(buyer, SeatClaim(EVENT, tuple(seat_ids)), ttl=ttl)
        except EXPECTED:
            return multiple()
        return (buyer, hold.hold_id)

    @rule(target=holds, buyer=buyers, quantity=quantities, ttl=ttls)
    def hold_units(self, buyer: str, quantity: int, ttl: timedelta) -> object:
        try:
            hold = self.booking.place_hold(buyer, PoolClaim(EVENT, POOL, quantity), ttl=ttl)
        except EXPECTED:
            return multiple()
        return (buyer, hold.hold_id)

    @rule(target=orders, hold=holds, payer=buyers)
    def pay_hold(self, hold: tuple[str, str], payer: str) -> object:
        owner, hold_id = hold
        if payer != owner:
            with pytest.raises(NotFoundError):
                self.booking.pay_hold(payer, hold_id)
            return multiple()
        try:
            purchase = self.booking.pay_hold(owner, hold_id)
        except EXPECTED:
            return multiple()
        return (owner, purchase.order.order_id)

    @rule(hold=holds, releaser=buyers)
    def release_hold(self, hold: tuple[str, str], releaser: str) -> None:
        owner, hold_id = hold
        if releaser != owner:
            with pytest.raises(NotFoundError):
                self.booking.release_hold(releaser, hold_id)
            return
        with contextlib.suppress(*EXPECTED):
            self.booking.release_hold(owner, hold_id)

    @rule(order=orders, canceller=buyers)
    def cancel_order(self, order: tuple[str, str], canceller: str) -> None:
        owner, order_id = order
        if canceller != owner:
            with pytest.raises(NotFoundError):
                self.booking.cancel_order(canceller, order_id)
            return
        before = self.services.wallets.balance(owner)
        was = self.booking.purchase(owner, order_id).order.status
        try:
            refunded = self.booking.cancel_order(owner, order_id)
        except EXPECTED:
            assert self.services.wallets.balance(owner) == before
            return
        assert refunded.status is OrderStatus.REFUNDED
        # A cancel of a refunded order answers it as it stands and gives nothing back twice.
        given_back = refunded.amount.times(1 if was is OrderStatus.CONFIRMED else 0)
        assert self.services.wallets.balance(owner) == before + given_back

    @rule(minutes=st.integers(1, 15))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def sweep(self) -> None:
        now_us = _us_since_epoch(self.clock)
        lapsed = {
            h.hold_id
            for h in self.store.snapshot().holds
            if h.status == "active" and h.expires_at_us <= now_us
        }

        assert self.booking.expire_lapsed_holds() == len(lapsed)
        assert self.booking.expire_lapsed_holds() == 0
        statuses = {h.hold_id: h.status for h in self.store.snapshot().holds}
        assert all(statuses[hold_id] == "expired" for hold_id in lapsed)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def seats_and_their_tickets_agree(self) -> None:
        snapshot = self.store.snapshot()
        valid = [t for t in snapshot.tickets if t.status == "valid" and t.seat_id is not None]
        per_seat = Counter(t.seat_id for t in valid)
        assert all(n == 1 for n in per_seat.values()), f"seat sold twice: {per_seat}"
        sold = {s.seat_id for s in snapshot.seats if s.status == "sold"}
        assert sold == set(per_seat), "a sold seat without a ticket, or a ticket for a free seat"
        hold_of_order = {o.order_id: o.hold_id for o in snapshot.orders}
        seat_hold = {s.seat_id: s.hold_id for s in snapshot.seats}
        for ticket in valid:
            assert ticket.seat_id is not None
            assert seat_hold[ticket.seat_id] == hold_of_order[ticket.order_id], ticket

    @invariant()
    def held_seats_belong_to_exactly_their_active_hold(self) -> None:
        snapshot = self.store.snapshot()
        status = {h.hold_id: h.status for h in snapshot.holds}
        held = {s.seat_id: s.hold_id for s in snapshot.seats if s.status == "held"}
        for seat_id, hold_id in held.items():
            assert hold_id is not None, seat_id
            assert status[hold_id] == "active", (seat_id, hold_id)
        for hold in snapshot.holds:
            if hold.status == "active" and hold.pool_id is None:
                assert all(held.get(seat_id) == hold.hold_id for seat_id in hold.seat_ids)
        for seat in snapshot.seats:
            assert (seat.status == "available") == (seat.hold_id is None)

    @invariant()
    def pool_counters_add_up(self) -> None:
        snapshot = self.store.snapshot()
        (pool,) = snapshot.pools
        assert pool.held >= 0
        assert pool.sold >= 0
        assert pool.held + pool.sold <= pool.capacity
        valid_units = sum(1 for t in snapshot.tickets if t.status == "valid" and t.pool_id)
        assert pool.sold == valid_units
        # Lapsed holds not yet expired are still 'active' in storage and still counted in
        # `held`: they are only given back when expired (by a claim, a release or the sweeper).
        active_units = sum(
            h.quantity for h in snapshot.holds if h.status == "active" and h.pool_id == POOL
        )
        assert pool.held == active_units

    @invariant()
    def availability_matches_storage(self) -> None:
        snapshot = self.store.snapshot()
        now_us = _us_since_epoch(self.clock)
        lapsed = {
            h.hold_id for h in snapshot.holds if h.status == "active" and h.expires_at_us <= now_us
        }
        free = {
            s.seat_id
            for s in snapshot.seats
            if s.status == "available" or (s.status == "held" and s.hold_id in lapsed)
        }
        (pool,) = snapshot.pools
        lapsed_units = sum(
            h.quantity for h in snapshot.holds if h.hold_id in lapsed and h.pool_id == POOL
        )
        shown = self.booking.availability(EVENT)
        assert {s.seat_id for s in shown.seats if s.available} == free
        (pool_view,) = shown.pools
        assert pool_view.available == pool.capacity - pool.held - pool.sold + lapsed_units

    @invariant()
    def money_is_conserved_and_no_wallet_is_negative(self) -> None:
        snapshot = self.store.snapshot()
        totals: Counter[str] = Counter()
        for account in snapshot.accounts:
            totals[account.currency] += account.balance_minor
            if account.kind != "world":
                assert account.balance_minor >= 0, account
        assert all(total == 0 for total in totals.values()), totals
        from_entries: defaultdict[str, int] = defaultdict(int)
        per_transfer: defaultdict[str, list[int]] = defaultdict(list)
        for entry in snapshot.entries:
            from_entries[entry.account_id] += entry.amount_minor
            per_transfer[entry.transfer_id].append(entry.amount_minor)
        for account in snapshot.accounts:
            assert account.balance_minor == from_entries[account.account_id], account
        assert set(per_transfer) == {t.transfer_id for t in snapshot.transfers}
        assert all(len(v) == 2 and sum(v) == 0 for v in per_transfer.values())

    @invariant()
    def every_order_has_exactly_its_charges_and_tickets(self) -> None:
        snapshot = self.store.snapshot()
        transfers: Counter[tuple[str | None, str]] = Counter(
            (t.order_id, t.kind) for t in snapshot.transfers
        )
        valid: Counter[str] = Counter(t.order_id for t in snapshot.tickets if t.status == "valid")
        issued: Counter[str] = Counter(t.order_id for t in snapshot.tickets)
        revenue = 0
        for order in snapshot.orders:
            key = order.order_id
            assert order.status in ("confirmed", "refunded"), order
            assert transfers[(key, "purchase")] == 1, order
            assert issued[key] == order.quantity, order
            if order.status == "confirmed":
                assert transfers[(key, "refund")] == 0, order
                assert valid[key] == order.quantity, order
                revenue += order.amount_minor
            else:
                assert transfers[(key, "refund")] == 1, order
                assert valid[key] == 0, order
        order_ids = {o.order_id for o in snapshot.orders}
        assert all(t.order_id in order_ids for t in snapshot.transfers if t.order_id)
        # Refunded orders gave their money back, so revenue holds exactly the confirmed sales.
        assert sum(a.balance_minor for a in snapshot.accounts if a.kind == "revenue") == revenue

    @invariant()
    def every_ticket_code_is_unique(self) -> None:
        snapshot: Snapshot = self.store.snapshot()
        codes = [t.code for t in snapshot.tickets]
        assert len(codes) == len(set(codes))


def _us_since_epoch(clock: FakeClock) -> int:
    return (clock.now() - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=40, stateful_step_count=25, deadline=None)


def machine_test_case(strategy: str) -> type[unittest.TestCase]:
    """The state machine run with one claim strategy, as a TestCase pytest collects."""
    machine = type(f"BookingMachine[{strategy}]", (BookingMachine,), {"strategy_name": strategy})
    case: type[unittest.TestCase] = machine.TestCase  # type: ignore[attr-defined]
    case.settings = SETTINGS  # type: ignore[attr-defined]
    return case


TestAtomicStrategy = machine_test_case("atomic")
TestRowLockStrategy = machine_test_case("row-lock")
TestOptimisticStrategy = machine_test_case("optimistic")
TestBatchedStrategy = machine_test_case("batched")
