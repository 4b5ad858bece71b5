"""Booking flows on a real PostgreSQL server, once per guarded claim strategy.

Every test gets a fresh database on the session's throwaway server and goes through
`lastseat.bootstrap.build`, exactly as an entry point would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import Services, build, open_store
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import (
    ConflictError,
    HoldExpiredError,
    InsufficientFundsError,
    SchemaVersionError,
    StoreError,
    UnavailableError,
)
from lastseat.domain.holds import HoldStatus, PoolClaim, SeatClaim, SectionClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.domain.tickets import Ticket, TicketStatus, new_ticket_code
from lastseat.service.snapshot import Snapshot

NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0)
GUARDED = (
    "atomic",
    "row-lock",
    "row-lock-nowait",
    "row-lock-skip-locked",
    "optimistic",
    "serializable",
)
EUR = "EUR"
EVENT = "ev1"
POOL = f"{EVENT}/standing"
SEAT_PRICE = 1_000
UNIT_PRICE = 500
CAPACITY = 5
WALLET = 10_000
SEAT_1, SEAT_2, SEAT_3 = (seat_id_for(EVENT, "A", 1, n) for n in (1, 2, 3))
PAST_TTL = timedelta(minutes=10, seconds=1)


@dataclass
class Shop:
    """One event on sale in a fresh PostgreSQL database, two buyers and a clock to move."""

    store: PostgresStore
    services: Services
    clock: FakeClock

    def balance(self, buyer_id: str) -> int:
        return self.services.wallets.balance(buyer_id).amount_minor

    def free_seats(self) -> set[str]:
        seats = self.services.booking.availability(EVENT).seats
        return {s.seat_id for s in seats if s.available}

    def free_units(self) -> int:
        (pool,) = self.services.booking.availability(EVENT).pools
        return pool.available


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    opened = open_store(pg_dsn)
    assert isinstance(opened, PostgresStore)
    yield opened
    opened.close()


@pytest.fixture(params=GUARDED)
def shop(request: pytest.FixtureRequest, store: PostgresStore) -> Shop:
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
    services.wallets.fund_wallets({"alice": Money(WALLET, EUR), "bob": Money(WALLET, EUR)})
    services.wallets.fund_wallets({"poor": Money(SEAT_PRICE - 1, EUR)})
    return Shop(store, services, clock)


def money_is_conserved(snapshot: Snapshot) -> bool:
    totals: Counter[str] = Counter()
    for account in snapshot.accounts:
        totals[account.currency] += account.balance_minor
    return all(total == 0 for total in totals.values())


def test_quick_buy_of_seats_sells_them_charges_their_price_and_issues_one_ticket_each(
    shop: Shop,
) -> None:
    purchase = shop.services.booking.quick_buy("alice", SeatClaim(EVENT, (SEAT_1, SEAT_2)))

    assert purchase.order.status is OrderStatus.CONFIRMED
    assert purchase.order.amount == Money(2 * SEAT_PRICE, EUR)
    assert sorted(t.seat_id or "" for t in purchase.tickets) == [SEAT_1, SEAT_2]
    assert all(t.status is TicketStatus.VALID for t in purchase.tickets)
    assert shop.balance("alice") == WALLET - 2 * SEAT_PRICE
    assert shop.free_seats() == {SEAT_3}
    snapshot = shop.store.snapshot()
    assert {s.seat_id: s.status for s in snapshot.seats} == {
        SEAT_1: "sold",
        SEAT_2: "sold",
        SEAT_3: "available",
    }
    assert money_is_conserved(snapshot)


def test_quick_buy_of_pool_units_counts_them_sold_and_issues_one_ticket_per_unit(
    shop: Shop,
) -> None:
    purchase = shop.services.booking.quick_buy("alice", PoolClaim(EVENT, POOL, 3))

    assert [t.pool_id for t in purchase.tickets] == [POOL] * 3
    assert shop.balance("alice") == WALLET - 3 * UNIT_PRICE
    assert shop.free_units() == CAPACITY - 3
    (pool,) = shop.store.snapshot().pools
    assert (pool.held, pool.sold) == (0, 3)


def test_taken_seats_and_missing_pool_units_raise_unavailable(shop: Shop) -> None:
    shop.services.booking.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    shop.services.booking.quick_buy("alice", PoolClaim(EVENT, POOL, CAPACITY))

    with pytest.raises(UnavailableError):
        shop.services.booking.quick_buy("bob", SeatClaim(EVENT, (SEAT_1, SEAT_2)))
    with pytest.raises(UnavailableError):
        shop.services.booking.quick_buy("bob", PoolClaim(EVENT, POOL, 1))
    assert shop.free_seats() == {SEAT_2, SEAT_3}
    assert shop.balance("bob") == WALLET


@pytest.mark.parametrize(
    "claim", [SeatClaim(EVENT, (SEAT_1,)), PoolClaim(EVENT, POOL, 2)], ids=["seat", "pool"]
)
def test_insufficient_funds_leave_nothing_claimed_and_nothing_charged(
    shop: Shop, claim: SeatClaim | PoolClaim
) -> None:
    before = shop.store.snapshot()

    with pytest.raises(InsufficientFundsError):
        shop.services.booking.quick_buy("poor", claim)

    after = shop.store.snapshot()
    assert after.seats == before.seats
    assert after.pools == before.pools
    assert after.accounts == before.accounts
    assert after.holds == after.orders == after.tickets == ()


def test_a_hold_takes_inventory_off_sale_until_paid_and_then_it_is_sold(shop: Shop) -> None:
    booking = shop.services.booking
    hold = booking.place_hold("alice", SeatClaim(EVENT, (SEAT_1,)))
    assert hold.status is HoldStatus.ACTIVE
    assert shop.free_seats() == {SEAT_2, SEAT_3}
    assert shop.balance("alice") == WALLET

    purchase = booking.pay_hold("alice", hold.hold_id)

    assert purchase.order.status is OrderStatus.CONFIRMED
    assert shop.balance("alice") == WALLET - SEAT_PRICE
    (seat,) = (s for s in shop.store.snapshot().seats if s.seat_id == SEAT_1)
    assert (seat.status, seat.hold_id) == ("sold", hold.hold_id)


def test_best_available_takes_free_seats_of_the_section_and_a_lapsed_hold_frees_its_seats(
    shop: Shop,
) -> None:
    booking = shop.services.booking
    booking.quick_buy("alice", SeatClaim(EVENT, (SEAT_2,)))
    hold = booking.place_hold("alice", SectionClaim(EVENT, "A", 2))
    assert hold.claim == SeatClaim(EVENT, (SEAT_1, SEAT_3))
    with pytest.raises(UnavailableError):
        booking.quick_buy("bob", SectionClaim(EVENT, "A", 1))

    shop.clock.advance(PAST_TTL)
    purchase = booking.quick_buy("bob", SectionClaim(EVENT, "A", 2))

    assert sorted(t.seat_id or "" for t in purchase.tickets) == [SEAT_1, SEAT_3]
    assert purchase.order.amount == Money(2 * SEAT_PRICE, EUR)
    assert shop.balance("bob") == WALLET - 2 * SEAT_PRICE
    assert shop.free_seats() == set()
    with pytest.raises(HoldExpiredError):
        booking.pay_hold("alice", hold.hold_id)


def test_the_fence_of_each_new_hold_is_larger_than_the_last(shop: Shop) -> None:
    booking = shop.services.booking
    fences = [booking.place_hold("alice", PoolClaim(EVENT, POOL, 1)).fence for _ in range(3)]

    assert fences == sorted(fences)
    assert len(set(fences)) == 3


def test_a_lapsed_hold_is_sold_to_another_buyer_and_its_payer_gets_hold_expired(
    shop: Shop,
) -> None:
    booking = shop.services.booking
    hold = booking.place_hold("alice", SeatClaim(EVENT, (SEAT_1,)))
    shop.clock.advance(PAST_TTL)

    booking.quick_buy("bob", SeatClaim(EVENT, (SEAT_1,)))

    with pytest.raises(HoldExpiredError):
        booking.pay_hold("alice", hold.hold_id)
    assert shop.balance("alice") == WALLET


def test_the_sweeper_expires_lapsed_holds_and_gives_their_units_back(shop: Shop) -> None:
    booking = shop.services.booking
    booking.place_hold("alice", PoolClaim(EVENT, POOL, 2))
    booking.place_hold("bob", SeatClaim(EVENT, (SEAT_2,)))
    shop.clock.advance(PAST_TTL)

    assert booking.expire_lapsed_holds() == 2
    assert booking.expire_lapsed_holds() == 0
    (pool,) = shop.store.snapshot().pools
    assert pool.held == 0
    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}


def test_cancel_refunds_the_money_voids_the_tickets_and_frees_the_inventory(shop: Shop) -> None:
    booking = shop.services.booking
    purchase = booking.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))

    cancelled = booking.cancel_order("alice", purchase.order.order_id)

    assert cancelled.status is OrderStatus.REFUNDED
    assert shop.balance("alice") == WALLET
    assert shop.free_seats() == {SEAT_1, SEAT_2, SEAT_3}
    snapshot = shop.store.snapshot()
    assert {t.status for t in snapshot.tickets} == {"void"}
    kinds = Counter(t.kind for t in snapshot.transfers if t.order_id == purchase.order.order_id)
    assert kinds == Counter({"purchase": 1, "refund": 1})
    assert money_is_conserved(snapshot)
    assert booking.quick_buy("bob", SeatClaim(EVENT, (SEAT_1,))).order.status is (
        OrderStatus.CONFIRMED
    )


# -- the store itself -----------------------------------------------------------------------


def test_a_database_with_a_newer_schema_version_is_refused(pg_dsn: str) -> None:
    open_store(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE schema_meta SET value = '999' WHERE key = 'version'")

    with pytest.raises(SchemaVersionError):
        open_store(pg_dsn)


def test_reopening_a_migrated_database_keeps_its_data(pg_dsn: str) -> None:
    first = open_store(pg_dsn)
    build(first).wallets.fund_wallets({"alice": Money(700, EUR)})
    first.close()

    second = open_store(pg_dsn)
    try:
        assert build(second).wallets.balance("alice") == Money(700, EUR)
    finally:
        second.close()


def test_an_unreachable_server_raises_store_error() -> None:
    with pytest.raises(StoreError):
        PostgresStore(
            "postgresql://postgres@127.0.0.1:1/nowhere", PostgresOptions(connect_timeout_s=2)
        )


def test_the_safety_net_turns_a_second_valid_ticket_for_a_seat_into_a_conflict(
    shop: Shop,
) -> None:
    purchase = shop.services.booking.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    (ticket,) = purchase.tickets
    twin = Ticket("tkt_twin", ticket.order_id, EVENT, SEAT_1, None, new_ticket_code())

    with pytest.raises(ConflictError), shop.store.write() as tx:
        tx.insert_tickets([twin])

    assert len(shop.store.snapshot().tickets) == 1
