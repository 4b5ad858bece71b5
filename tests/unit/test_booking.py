"""Booking, wallet and store flows on a real SQLite file, once per guarded claim strategy.

Time is a FakeClock: holds lapse when the test moves the clock, never by sleeping. Tests whose
docstring starts with "Regression:" pin a bug found and fixed while the suite was written.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from lastseat.bootstrap import Services, build, open_store
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import (
    HoldExpiredError,
    InsufficientFundsError,
    InvalidTransitionError,
    LastseatError,
    NotFoundError,
    SchemaVersionError,
    StoreError,
    UnavailableError,
    ValidationError,
)
from lastseat.domain.holds import Claim, HoldStatus, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.domain.tickets import TicketStatus
from lastseat.service.booking import BookingService
from lastseat.service.ports import Store
from lastseat.service.snapshot import Snapshot

# Retries stay bounded, but a unit test has no reason to sleep between them.
NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0)
GUARDED = ("atomic", "row-lock", "optimistic")
EUR = "EUR"
EVENT = "ev1"
OTHER_EVENT = "ev2"
POOL = f"{EVENT}/standing"
OTHER_POOL = f"{OTHER_EVENT}/standing"
SEAT_PRICE = 1_000
UNIT_PRICE = 500
CAPACITY = 5
SEAT_1, SEAT_2, SEAT_3 = (seat_id_for(EVENT, "A", 1, n) for n in (1, 2, 3))
OTHER_SEAT = seat_id_for(OTHER_EVENT, "A", 1, 1)
WALLET = 10_000
TTL = timedelta(minutes=10)
PAST_TTL = TTL + timedelta(seconds=1)


@dataclass
class Shop:
    """One event on sale in a fresh database, with three buyers and a clock to move."""

    store: Store
    services: Services
    clock: FakeClock

    @property
    def booking(self) -> BookingService:
        return self.services.booking

    def balance(self, buyer_id: str) -> int:
        return self.services.wallets.balance(buyer_id).amount_minor

    def free_seats(self) -> set[str]:
        return {s.seat_id for s in self.booking.availability(EVENT).seats if s.available}

    def free_units(self) -> int:
        (pool,) = (p for p in self.booking.availability(EVENT).pools if p.pool_id == POOL)
        return pool.available


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture(params=GUARDED)
def shop(request: pytest.FixtureRequest, store: Store) -> Shop:
    clock = FakeClock()
    services = build(store, request.param, clock=clock, retry=NO_WAIT)
    services.catalog.create_event(
        build_event(
            EVENT,
            "Show",
            EUR,
            [SeatBlock("A", 1, 3, Money(SEAT_PRICE, EUR))],
            [("standing", CAPACITY, Money(UNIT_PRICE, EUR))],
        )
    )
    services.catalog.create_event(
        build_event(
            OTHER_EVENT,
            "Other Show",
            EUR,
            [SeatBlock("A", 1, 1, Money(SEAT_PRICE, EUR))],
            [("standing", CAPACITY, Money(UNIT_PRICE, EUR))],
        )
    )
    for buyer in ("alice", "bob"):
        services.wallets.open_wallet(buyer, EUR)
        services.wallets.top_up(buyer, Money(WALLET, EUR))
    services.wallets.open_wallet("poor", EUR)
    services.wallets.top_up("poor", Money(SEAT_PRICE - 1, EUR))
    return Shop(store, services, clock)


def seats(*seat_ids: str) -> SeatClaim:
    return SeatClaim(EVENT, seat_ids)


def units(quantity: int) -> PoolClaim:
    return PoolClaim(EVENT, POOL, quantity)


def money_is_conserved(snapshot: Snapshot) -> bool:
    totals: Counter[str] = Counter()
    for account in snapshot.accounts:
        totals[account.currency] += account.balance_minor
    return all(total == 0 for total in totals.values())


def valid_tickets(snapshot: Snapshot, order_id: str) -> list[str]:
    return [t.ticket_id for t in snapshot.tickets if t.order_id == order_id and t.status == "valid"]


def transfers_of(snapshot: Snapshot, order_id: str, kind: str) -> int:
    return sum(1 for t in snapshot.transfers if t.order_id == order_id and t.kind == kind)


# -- quick buy ---------------------------------------------------------------------------------


def test_quick_buy_of_seats_sells_them_charges_their_price_and_issues_one_ticket_each(
    shop: Shop,
) -> None:
    purchase = shop.booking.quick_buy("alice", seats(SEAT_2, SEAT_1))

    assert purchase.order.status is OrderStatus.CONFIRMED
    assert purchase.order.amount == Money(2 * SEAT_PRICE, EUR)
    assert purchase.order.quantity == 2
    assert sorted(t.seat_id or "" for t in purchase.tickets) == [SEAT_1, SEAT_2]
    assert all(t.status is TicketStatus.VALID for t in purchase.tickets)
    assert len({t.code for t in purchase.tickets}) == 2
    assert shop.balance("alice") == WALLET - 2 * SEAT_PRICE
    assert shop.free_seats() == {SEAT_3}
    snapshot = shop.store.snapshot()
    assert {s.seat_id: s.status for s in snapshot.seats if s.event_id == EVENT} == {
        SEAT_1: "sold",
        SEAT_2: "sold",
        SEAT_3: "available",
    }
    assert transfers_of(snapshot, purchase.order.order_id, "purchase") == 1
    assert money_is_conserved(snapshot)


def test_quick_buy_of_pool_units_counts_them_sold_and_issues_one_ticket_per_unit(
    shop: Shop,
) -> None:
    purchase = shop.booking.quick_buy("alice", units(3))

    assert purchase.order.amount == Money(3 * UNIT_PRICE, EUR)
    assert [t.pool_id for t in purchase.tickets] == [POOL] * 3
    assert shop.balance("alice") == WALLET - 3 * UNIT_PRICE
    assert shop.free_units() == CAPACITY - 3
    (pool,) = (p for p in shop.store.snapshot().pools if p.pool_id == POOL)
    assert (pool.held, pool.sold) == (0, 3)


def test_a_bought_order_can_be_read_back_with_its_tickets(shop: Shop) -> None:
    purchase = shop.booking.quick_buy("alice", seats(SEAT_1))

    again = shop.booking.purchase("alice", purchase.order.order_id)

    assert again.order == purchase.order
    assert again.tickets == purchase.tickets
    with pytest.raises(NotFoundError):
        shop.booking.purchase("bob", purchase.order.order_id)


@pytest.mark.parametrize("claim", [seats(SEAT_1), units(2)], ids=["seat", "pool"])
def test_a_failed_charge_leaves_nothing_claimed_and_nothing_charged(
    shop: Shop, claim: Claim
) -> None:
    free_seats, free_units = shop.free_seats(), shop.free_units()
    balance = shop.balance("poor")
    before = shop.store.snapshot()

    with pytest.raises(InsufficientFundsError):
        shop.booking.quick_buy("poor", claim)

    assert shop.free_seats() == free_seats
    assert shop.free_units() == free_units
    assert shop.balance("poor") == balance
    after = shop.store.snapshot()
    assert after.orders == ()
    assert after.tickets == ()
    assert after.holds == before.holds
    assert after.seats == before.seats
    assert after.pools == before.pools
    assert after.transfers == before.transfers


def test_a_buyer_without_a_wallet_is_refused_and_nothing_is_claimed(shop: Shop) -> None:
    with pytest.raises(NotFoundError):
        shop.booking.quick_buy("stranger", seats(SEAT_1))

    assert SEAT_1 in shop.free_seats()
    assert shop.store.snapshot().orders == ()


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claim",
    [
        seats(seat_id_for(EVENT, "A", 1, 99)),
        seats(SEAT_1, seat_id_for(EVENT, "Z", 1, 1)),
        PoolClaim(EVENT, f"{EVENT}/balcony", 1),
        SeatClaim("no-such-event", (seat_id_for("no-such-event", "A", 1, 1),)),
    ],
    ids=["unknown-seat", "one-unknown-seat-of-two", "unknown-pool", "unknown-event"],
)
def test_claims_naming_inventory_that_does_not_exist_raise_not_found(
    shop: Shop, claim: Claim
) -> None:
    with pytest.raises(NotFoundError):
        shop.booking.quick_buy("alice", claim)
    with pytest.raises(NotFoundError):
        shop.booking.place_hold("alice", claim)

    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}
    assert shop.balance("alice") == WALLET


def test_a_claim_cannot_name_inventory_of_another_event(shop: Shop) -> None:
    with pytest.raises(ValidationError):
        SeatClaim(EVENT, (OTHER_SEAT,))
    with pytest.raises(ValidationError):
        PoolClaim(EVENT, OTHER_POOL, 1)
    assert shop.balance("alice") == WALLET


def test_taken_seats_raise_unavailable(shop: Shop) -> None:
    shop.booking.quick_buy("alice", seats(SEAT_1))

    with pytest.raises(UnavailableError):
        shop.booking.quick_buy("bob", seats(SEAT_1))
    with pytest.raises(UnavailableError):
        shop.booking.place_hold("bob", seats(SEAT_1))

    assert shop.balance("bob") == WALLET


def test_a_group_with_one_taken_seat_is_refused_whole_and_claims_none_of_the_others(
    shop: Shop,
) -> None:
    shop.booking.place_hold("alice", seats(SEAT_2))

    with pytest.raises(UnavailableError):
        shop.booking.quick_buy("bob", seats(SEAT_1, SEAT_2, SEAT_3))

    assert shop.free_seats() == {SEAT_1, SEAT_3}
    assert shop.balance("bob") == WALLET


def test_more_pool_units_than_are_left_raise_unavailable(shop: Shop) -> None:
    shop.booking.quick_buy("alice", units(CAPACITY - 1))

    with pytest.raises(UnavailableError):
        shop.booking.quick_buy("bob", units(2))
    with pytest.raises(UnavailableError):
        shop.booking.place_hold("bob", units(2))

    assert shop.booking.quick_buy("bob", units(1)).order.quantity == 1
    assert shop.free_units() == 0


# -- hold then pay -----------------------------------------------------------------------------


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_2), units(2)], ids=["seats", "pool"])
def test_a_hold_takes_inventory_off_sale_until_paid_and_then_it_is_sold(
    shop: Shop, claim: Claim
) -> None:
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)

    assert hold.status is HoldStatus.ACTIVE
    assert hold.expires_at == shop.clock.now() + TTL
    assert hold.fence > 0
    assert shop.balance("alice") == WALLET
    held_seats, held_units = shop.free_seats(), shop.free_units()

    purchase = shop.booking.pay_hold("alice", hold.hold_id)

    assert purchase.order.hold_id == hold.hold_id
    assert purchase.order.status is OrderStatus.CONFIRMED
    assert len(purchase.tickets) == claim.quantity
    assert shop.balance("alice") == WALLET - purchase.order.amount.amount_minor
    assert shop.free_seats() == held_seats
    assert shop.free_units() == held_units
    snapshot = shop.store.snapshot()
    (stored,) = (h for h in snapshot.holds if h.hold_id == hold.hold_id)
    assert stored.status == "converted"
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert pool.held == 0


def test_the_fence_of_each_new_hold_is_larger_than_the_last(shop: Shop) -> None:
    fences = [shop.booking.place_hold("alice", units(1)).fence for _ in range(3)]

    assert fences == sorted(fences)
    assert len(set(fences)) == 3


def test_paying_a_hold_twice_raises_invalid_transition_and_charges_once(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_1), ttl=TTL)
    shop.booking.pay_hold("alice", hold.hold_id)

    with pytest.raises(InvalidTransitionError):
        shop.booking.pay_hold("alice", hold.hold_id)

    assert shop.balance("alice") == WALLET - SEAT_PRICE
    assert len(shop.store.snapshot().orders) == 1


def test_a_hold_paid_without_enough_money_stays_held_and_nothing_is_charged(shop: Shop) -> None:
    hold = shop.booking.place_hold("poor", seats(SEAT_1), ttl=TTL)

    with pytest.raises(InsufficientFundsError):
        shop.booking.pay_hold("poor", hold.hold_id)

    assert SEAT_1 not in shop.free_seats()
    assert shop.balance("poor") == SEAT_PRICE - 1
    snapshot = shop.store.snapshot()
    assert snapshot.orders == ()
    (stored,) = snapshot.holds
    assert stored.status == "active"


def test_a_buyer_cannot_pay_or_release_another_buyers_hold(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_1), ttl=TTL)

    with pytest.raises(NotFoundError):
        shop.booking.pay_hold("bob", hold.hold_id)
    with pytest.raises(NotFoundError):
        shop.booking.release_hold("bob", hold.hold_id)
    with pytest.raises(NotFoundError):
        shop.booking.pay_hold("alice", "hld_does_not_exist")

    assert shop.balance("bob") == WALLET
    assert SEAT_1 not in shop.free_seats()


# -- expiry ------------------------------------------------------------------------------------


def test_a_lapsed_hold_frees_its_seats_on_read_before_any_sweeper_runs(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_1, SEAT_2), ttl=TTL)
    shop.clock.advance(TTL - timedelta(microseconds=1))
    assert shop.free_seats() == {SEAT_3}

    shop.clock.advance(timedelta(microseconds=1))

    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}
    assert shop.booking.availability(EVENT).seats_available == 3
    # Nothing was written: storage still has the hold active and the seats held.
    snapshot = shop.store.snapshot()
    (stored,) = snapshot.holds
    assert (stored.hold_id, stored.status) == (hold.hold_id, "active")
    assert {s.seat_id for s in snapshot.seats if s.status == "held"} == {SEAT_1, SEAT_2}


def test_a_lapsed_pool_hold_frees_its_units_on_read_before_any_sweeper_runs(shop: Shop) -> None:
    shop.booking.place_hold("alice", units(4), ttl=TTL)
    assert shop.free_units() == CAPACITY - 4

    shop.clock.advance(PAST_TTL)

    assert shop.free_units() == CAPACITY
    (pool,) = (p for p in shop.store.snapshot().pools if p.pool_id == POOL)
    assert pool.held == 4


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_2), units(CAPACITY)], ids=["seats", "pool"])
def test_another_buyer_can_buy_the_inventory_of_a_lapsed_hold(shop: Shop, claim: Claim) -> None:
    """Regression (optimistic): inventory under a lapsed, unswept hold could never be claimed.

    src/lastseat/concurrency/optimistic.py `attempt`: `release_lapsed_holds` expires the lapsed
    hold inside the write transaction, then raises VersionConflictError, which rolls that very
    expiry back. Every retry finds the same lapsed hold again, so the claim ends in
    RetriesExhaustedError (a ConflictError) until a sweeper happens to run.
    """
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)
    shop.clock.advance(PAST_TTL)

    purchase = shop.booking.quick_buy("bob", claim)

    assert purchase.order.buyer_id == "bob"
    assert shop.balance("bob") == WALLET - purchase.order.amount.amount_minor
    snapshot = shop.store.snapshot()
    (old,) = (h for h in snapshot.holds if h.hold_id == hold.hold_id)
    assert old.status == "expired"
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert pool.held == 0


@pytest.mark.parametrize("claim", [seats(SEAT_1), units(CAPACITY)], ids=["seat", "pool"])
def test_paying_a_hold_whose_inventory_was_sold_meanwhile_raises_hold_expired_and_charges_nothing(
    shop: Shop, claim: Claim
) -> None:
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)
    shop.clock.advance(PAST_TTL)
    shop.booking.expire_lapsed_holds()
    shop.booking.quick_buy("bob", claim)

    with pytest.raises(HoldExpiredError):
        shop.booking.pay_hold("alice", hold.hold_id)

    assert shop.balance("alice") == WALLET
    assert [o.buyer_id for o in shop.store.snapshot().orders] == ["bob"]


def test_paying_a_lapsed_hold_after_another_buyer_took_the_seat_raises_hold_expired(
    shop: Shop,
) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_1), ttl=TTL)
    shop.clock.advance(PAST_TTL)
    assert SEAT_1 in shop.free_seats()
    shop.booking.quick_buy("bob", seats(SEAT_1))  # optimistic once livelocked here

    with pytest.raises(HoldExpiredError):
        shop.booking.pay_hold("alice", hold.hold_id)

    assert shop.balance("alice") == WALLET
    assert [o.buyer_id for o in shop.store.snapshot().orders] == ["bob"]


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_3), units(2)], ids=["seats", "pool"])
def test_paying_a_lapsed_hold_whose_inventory_is_still_free_claims_it_again(
    shop: Shop, claim: Claim
) -> None:
    """Regression (optimistic only): the lapsed-hold livelock described in the test above."""
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)
    shop.clock.advance(PAST_TTL)

    purchase = shop.booking.pay_hold("alice", hold.hold_id)

    assert purchase.order.status is OrderStatus.CONFIRMED
    assert purchase.order.quantity == claim.quantity
    assert shop.balance("alice") == WALLET - purchase.order.amount.amount_minor
    snapshot = shop.store.snapshot()
    assert len(snapshot.orders) == 1
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert pool.held == 0
    assert money_is_conserved(snapshot)


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_3), units(2)], ids=["seats", "pool"])
def test_paying_a_swept_hold_whose_inventory_is_still_free_claims_it_again(
    shop: Shop, claim: Claim
) -> None:
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)
    shop.clock.advance(PAST_TTL)
    assert shop.booking.expire_lapsed_holds() == 1

    purchase = shop.booking.pay_hold("alice", hold.hold_id)

    assert purchase.order.quantity == claim.quantity
    assert shop.balance("alice") == WALLET - purchase.order.amount.amount_minor


def test_paying_an_expired_pool_hold_twice_charges_only_once(shop: Shop) -> None:
    """Regression: every pay_hold of an EXPIRED pool hold buys fresh units and charges again.

    src/lastseat/service/booking.py `pay_hold`: for a hold in status EXPIRED it calls
    `quick_buy(buyer_id, hold.claim)` and never marks the original hold as paid (the new order
    hangs off a new, converted hold), so the same hold can be paid any number of times while
    units are left: two orders and two charges for one hold (DESIGN.md §3.3). Seat holds are
    only protected by accident (the re-claimed seats are sold the second time round).
    """
    hold = shop.booking.place_hold("alice", units(2), ttl=TTL)
    shop.clock.advance(PAST_TTL)
    shop.booking.expire_lapsed_holds()
    shop.booking.pay_hold("alice", hold.hold_id)

    with pytest.raises(InvalidTransitionError):
        shop.booking.pay_hold("alice", hold.hold_id)

    assert shop.balance("alice") == WALLET - 2 * UNIT_PRICE
    assert len(shop.store.snapshot().orders) == 1


# -- the sweeper -------------------------------------------------------------------------------


def test_the_sweeper_expires_lapsed_holds_and_gives_their_pool_units_back(shop: Shop) -> None:
    first = shop.booking.place_hold("alice", units(2), ttl=TTL)
    second = shop.booking.place_hold("bob", units(1), ttl=TTL)
    later = shop.booking.place_hold("bob", units(1), ttl=TTL + timedelta(minutes=5))
    shop.clock.advance(PAST_TTL)

    expired = shop.booking.expire_lapsed_holds()

    assert expired == 2
    snapshot = shop.store.snapshot()
    statuses = {h.hold_id: h.status for h in snapshot.holds}
    assert statuses == {
        first.hold_id: "expired",
        second.hold_id: "expired",
        later.hold_id: "active",
    }
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert (pool.held, pool.sold) == (1, 0)
    assert shop.free_units() == CAPACITY - 1


def test_the_sweeper_gives_the_seats_of_lapsed_holds_back(shop: Shop) -> None:
    shop.booking.place_hold("alice", seats(SEAT_1, SEAT_2), ttl=TTL)
    shop.clock.advance(PAST_TTL)

    assert shop.booking.expire_lapsed_holds() == 1

    snapshot = shop.store.snapshot()
    assert all(s.status == "available" and s.hold_id is None for s in snapshot.seats)


def test_running_the_sweeper_twice_expires_each_hold_once(shop: Shop) -> None:
    shop.booking.place_hold("alice", units(2), ttl=TTL)
    shop.booking.place_hold("bob", seats(SEAT_1), ttl=TTL)
    shop.clock.advance(PAST_TTL)

    assert shop.booking.expire_lapsed_holds() == 2
    assert shop.booking.expire_lapsed_holds() == 0

    (pool,) = (p for p in shop.store.snapshot().pools if p.pool_id == POOL)
    assert pool.held == 0  # given back once, not twice (a second give-back would go negative)
    assert shop.free_units() == CAPACITY


def test_the_sweeper_respects_its_limit(shop: Shop) -> None:
    for _ in range(3):
        shop.booking.place_hold("alice", units(1), ttl=TTL)
    shop.clock.advance(PAST_TTL)

    assert shop.booking.expire_lapsed_holds(limit=2) == 2
    assert shop.booking.expire_lapsed_holds(limit=2) == 1


def test_the_sweeper_leaves_holds_that_have_not_lapsed(shop: Shop) -> None:
    shop.booking.place_hold("alice", units(2), ttl=TTL)
    shop.clock.advance(TTL - timedelta(seconds=1))

    assert shop.booking.expire_lapsed_holds() == 0
    assert shop.free_units() == CAPACITY - 2


# -- release -----------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_2), units(3)], ids=["seats", "pool"])
def test_releasing_a_hold_gives_its_inventory_back(shop: Shop, claim: Claim) -> None:
    hold = shop.booking.place_hold("alice", claim, ttl=TTL)

    released = shop.booking.release_hold("alice", hold.hold_id)

    assert released.status is HoldStatus.RELEASED
    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}
    assert shop.free_units() == CAPACITY
    (pool,) = (p for p in shop.store.snapshot().pools if p.pool_id == POOL)
    assert pool.held == 0
    assert shop.balance("alice") == WALLET


def test_a_released_hold_released_again_answers_released_and_cannot_be_paid(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", units(3), ttl=TTL)
    shop.booking.release_hold("alice", hold.hold_id)

    again = shop.booking.release_hold("alice", hold.hold_id)  # gone already: as it stands
    assert again.status is HoldStatus.RELEASED
    with pytest.raises(InvalidTransitionError):
        shop.booking.pay_hold("alice", hold.hold_id)

    assert shop.free_units() == CAPACITY
    assert shop.balance("alice") == WALLET


def test_releasing_a_lapsed_hold_expires_it_and_gives_its_units_back_once(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", units(3), ttl=TTL)
    shop.clock.advance(PAST_TTL)

    released = shop.booking.release_hold("alice", hold.hold_id)

    assert released.status is HoldStatus.EXPIRED
    assert shop.booking.expire_lapsed_holds() == 0
    (pool,) = (p for p in shop.store.snapshot().pools if p.pool_id == POOL)
    assert pool.held == 0


def test_a_paid_hold_cannot_be_released(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_1), ttl=TTL)
    shop.booking.pay_hold("alice", hold.hold_id)

    with pytest.raises(InvalidTransitionError):
        shop.booking.release_hold("alice", hold.hold_id)

    assert SEAT_1 not in shop.free_seats()


# -- cancel and refund -------------------------------------------------------------------------


@pytest.mark.parametrize("claim", [seats(SEAT_1, SEAT_2), units(3)], ids=["seats", "pool"])
def test_cancelling_an_order_refunds_the_money_and_releases_the_inventory(
    shop: Shop, claim: Claim
) -> None:
    purchase = shop.booking.quick_buy("alice", claim)
    order_id = purchase.order.order_id

    cancelled = shop.booking.cancel_order("alice", order_id)

    assert cancelled.status is OrderStatus.REFUNDED
    assert shop.balance("alice") == WALLET
    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}
    assert shop.free_units() == CAPACITY
    snapshot = shop.store.snapshot()
    (order,) = snapshot.orders
    assert order.status == "refunded"
    assert valid_tickets(snapshot, order_id) == []
    assert {t.status for t in snapshot.tickets} == {"void"}
    assert transfers_of(snapshot, order_id, "purchase") == 1
    assert transfers_of(snapshot, order_id, "refund") == 1
    assert all(s.status == "available" and s.hold_id is None for s in snapshot.seats)
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert (pool.held, pool.sold) == (0, 0)
    assert money_is_conserved(snapshot)


def test_cancelling_an_order_paid_from_a_hold_releases_its_seats(shop: Shop) -> None:
    hold = shop.booking.place_hold("alice", seats(SEAT_3), ttl=TTL)
    order_id = shop.booking.pay_hold("alice", hold.hold_id).order.order_id

    shop.booking.cancel_order("alice", order_id)

    assert SEAT_3 in shop.free_seats()
    assert shop.booking.quick_buy("bob", seats(SEAT_3)).order.buyer_id == "bob"


def test_cancelling_an_order_twice_answers_refunded_and_refunds_once(shop: Shop) -> None:
    order_id = shop.booking.quick_buy("alice", units(2)).order.order_id
    shop.booking.cancel_order("alice", order_id)

    again = shop.booking.cancel_order("alice", order_id)  # refunded already: as it stands
    assert again.status is OrderStatus.REFUNDED

    assert shop.balance("alice") == WALLET
    snapshot = shop.store.snapshot()
    assert transfers_of(snapshot, order_id, "refund") == 1
    (pool,) = (p for p in snapshot.pools if p.pool_id == POOL)
    assert pool.sold == 0


def test_cancelling_another_buyers_order_raises_not_found_and_changes_nothing(
    shop: Shop,
) -> None:
    order_id = shop.booking.quick_buy("alice", seats(SEAT_1)).order.order_id
    before = shop.store.snapshot()

    with pytest.raises(NotFoundError):
        shop.booking.cancel_order("bob", order_id)
    with pytest.raises(NotFoundError):
        shop.booking.cancel_order("alice", "ord_does_not_exist")

    assert shop.store.snapshot() == before


# -- wallets -----------------------------------------------------------------------------------


def test_a_transfer_between_buyers_conserves_money(shop: Shop) -> None:
    wallets = shop.services.wallets

    left = wallets.transfer("alice", "bob", Money(2_500, EUR))

    assert left == Money(WALLET - 2_500, EUR)
    assert shop.balance("bob") == WALLET + 2_500
    assert money_is_conserved(shop.store.snapshot())


def test_a_transfer_may_empty_a_wallet_but_not_overdraw_it(shop: Shop) -> None:
    wallets = shop.services.wallets
    wallets.transfer("alice", "bob", Money(WALLET, EUR))
    before = shop.store.snapshot()

    with pytest.raises(InsufficientFundsError):
        wallets.transfer("alice", "bob", Money(1, EUR))

    assert shop.balance("alice") == 0
    assert shop.balance("bob") == 2 * WALLET
    assert shop.store.snapshot() == before


def test_a_transfer_to_a_buyer_without_a_wallet_changes_nothing(shop: Shop) -> None:
    before = shop.store.snapshot()

    with pytest.raises(NotFoundError):
        shop.services.wallets.transfer("alice", "stranger", Money(100, EUR))

    assert shop.store.snapshot() == before


def test_a_top_up_brings_money_in_from_the_world_account(shop: Shop) -> None:
    new_balance = shop.services.wallets.top_up("alice", Money(250, EUR))

    assert new_balance == Money(WALLET + 250, EUR)
    snapshot = shop.store.snapshot()
    (world,) = (a for a in snapshot.accounts if a.kind == "world")
    assert world.balance_minor == -(2 * WALLET + SEAT_PRICE - 1 + 250)
    assert money_is_conserved(snapshot)


# -- the store ---------------------------------------------------------------------------------


def test_a_database_with_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT value FROM schema_meta WHERE key = 'version'").fetchone()
        conn.execute(
            "UPDATE schema_meta SET value = ? WHERE key = 'version'", (str(int(version) + 1),)
        )
    conn.close()

    with pytest.raises(SchemaVersionError):
        open_store(str(path))


def test_reopening_a_migrated_database_keeps_its_data(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    first = open_store(path)
    build(first).wallets.open_wallet("alice", EUR)
    first.close()

    second = open_store(path)
    try:
        assert build(second).wallets.balance("alice") == Money(0, EUR)
    finally:
        second.close()


def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not an SQLite database, just some text\n" * 200)

    with pytest.raises(StoreError) as raised:
        open_store(str(path))

    assert isinstance(raised.value, LastseatError)
    assert not isinstance(raised.value, sqlite3.Error)


@pytest.mark.parametrize(
    "where", ["missing-dir/t.db", "."], ids=["parent-does-not-exist", "a-directory"]
)
def test_an_unwritable_path_raises_store_error(tmp_path: Path, where: str) -> None:
    with pytest.raises(StoreError) as raised:
        open_store(str(tmp_path / where))

    assert not isinstance(raised.value, sqlite3.Error)


def test_opening_a_missing_database_without_create_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(str(tmp_path / "absent.db"), create=False)

    assert not (tmp_path / "absent.db").exists()
