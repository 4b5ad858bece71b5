"""Cancel and release give one answer per state, and resume an earlier attempt's work.

A hold that is gone (released, or lapsed - whether or not anything marked it expired yet)
answers as it stands, 200-style, instead of a refusal that depends on who touched it first;
an order refunded already answers refunded. Under a request fence, a takeover's re-run of a
cancel or a release that an earlier attempt committed gets the success that attempt would
have answered, and the dead attempt's own late write is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import psycopg
import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import Services, build, open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import FencedOutError, InvalidTransitionError, NotFoundError
from lastseat.domain.holds import HoldStatus, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.ledger import wallet_account
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.service.idempotency import (
    IdempotencyService,
    RequestFence,
    RequestKey,
    Started,
    fingerprint,
)

SEAT = "ev/A/0001/0001"
POOL = "ev/standing"
PRICE = 1_000
FUNDS = 10_000
TTL = timedelta(seconds=1)
LAPSED = timedelta(seconds=5)
# The lease the idempotency service gives each attempt; a takeover needs it to have ended.
LEASE = timedelta(seconds=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def _shop(db: str, clock: FakeClock) -> Iterator[Services]:
    """An event with two seats and a 10-unit pool, and two funded buyers."""
    store = open_store(db)
    services = build(store, clock=clock, hold_ttl=TTL)
    services.catalog.create_event(
        build_event(
            "ev",
            "Show",
            "EUR",
            [SeatBlock("A", 1, 2, Money(PRICE, "EUR"))],
            [("standing", 10, Money(PRICE, "EUR"))],
        )
    )
    for buyer_id in ("alice", "bob"):
        services.wallets.open_wallet(buyer_id, "EUR")
        services.wallets.top_up(buyer_id, Money(FUNDS, "EUR"))
    try:
        yield services
    finally:
        services.close()
        store.close()


@pytest.fixture
def shop(db_url: str, clock: FakeClock) -> Iterator[Services]:
    with _shop(db_url, clock) as services:
        yield services


def balance(shop: Services, buyer_id: str) -> int:
    with shop.store.read() as tx:
        found = tx.balance(wallet_account(buyer_id))
    assert found is not None
    return found.amount_minor


def held_units(shop: Services) -> int:
    """The pool's stored `held` counter (availability would count lapsed holds as free)."""
    (pool,) = shop.store.snapshot().pools
    return pool.held


class Keys:
    """One Idempotency-Key's attempts: the first, and a takeover once its lease ended."""

    def __init__(self, shop: Services, clock: FakeClock, path: str) -> None:
        self.service = IdempotencyService(shop.store, lease=LEASE, clock=clock)
        self.clock = clock
        self.key = RequestKey("alice", "POST", path, "k-1")

    def attempt(self) -> RequestFence:
        begun = self.service.begin(self.key, fingerprint("POST", self.key.path, b""))
        assert isinstance(begun, Started)
        return begun.fence

    def take_over(self) -> RequestFence:
        """The first attempt's server died (its answer never stored): lease out, attempt 2."""
        self.clock.advance(LEASE + timedelta(seconds=1))
        fence = self.attempt()
        assert fence.attempt == 2
        return fence


# -- finding 3: a lapsed hold has one answer -----------------------------------------------


def test_releasing_a_lapsed_hold_nobody_touched_answers_expired_and_frees_it(
    shop: Services, clock: FakeClock
) -> None:
    hold = shop.booking.place_hold("alice", PoolClaim("ev", POOL, 2))
    clock.advance(LAPSED)
    released = shop.booking.release_hold("alice", hold.hold_id)
    assert released.status is HoldStatus.EXPIRED
    assert shop.booking.hold("alice", hold.hold_id).status is HoldStatus.EXPIRED
    assert held_units(shop) == 0


def test_releasing_a_lapsed_hold_another_buyers_claim_expired_in_passing_answers_expired(
    shop: Services, clock: FakeClock
) -> None:
    hold = shop.booking.place_hold("alice", SeatClaim("ev", (SEAT,)))
    clock.advance(LAPSED)
    shop.booking.quick_buy("bob", SeatClaim("ev", (SEAT,)))  # expires alice's hold in passing
    assert shop.booking.hold("alice", hold.hold_id).status is HoldStatus.EXPIRED

    released = shop.booking.release_hold("alice", hold.hold_id)
    assert released.status is HoldStatus.EXPIRED
    assert shop.booking.availability("ev").seats_available == 1  # bob's seat stays sold


def test_releasing_a_lapsed_hold_the_sweeper_expired_answers_expired(
    shop: Services, clock: FakeClock
) -> None:
    hold = shop.booking.place_hold("alice", PoolClaim("ev", POOL, 3))
    clock.advance(LAPSED)
    assert shop.booking.expire_lapsed_holds() == 1
    assert shop.booking.release_hold("alice", hold.hold_id).status is HoldStatus.EXPIRED
    assert held_units(shop) == 0  # given back once, not twice


def test_releasing_a_released_hold_again_answers_released_and_gives_nothing_back_twice(
    shop: Services,
) -> None:
    hold = shop.booking.place_hold("alice", PoolClaim("ev", POOL, 2))
    other = shop.booking.place_hold("bob", PoolClaim("ev", POOL, 3))
    assert shop.booking.release_hold("alice", hold.hold_id).status is HoldStatus.RELEASED
    assert shop.booking.release_hold("alice", hold.hold_id).status is HoldStatus.RELEASED
    assert held_units(shop) == other.claim.quantity


def test_releasing_a_paid_hold_is_still_refused(shop: Services) -> None:
    hold = shop.booking.place_hold("alice", SeatClaim("ev", (SEAT,)))
    shop.checkout.pay_hold("alice", hold.hold_id)
    with pytest.raises(InvalidTransitionError):
        shop.booking.release_hold("alice", hold.hold_id)


# -- finding 2: cancel and release resume under a request fence ----------------------------


def test_a_cancel_taken_over_after_its_refund_committed_answers_refunded_and_refunds_once(
    shop: Services, clock: FakeClock
) -> None:
    order = shop.checkout.quick_buy("alice", SeatClaim("ev", (SEAT,))).order
    keys = Keys(shop, clock, f"/orders/{order.order_id}/cancel")
    first = keys.attempt()
    shop.checkout.cancel_order("alice", order.order_id, first)  # committed; answer lost

    again = shop.checkout.cancel_order("alice", order.order_id, keys.take_over())
    assert again.status is OrderStatus.REFUNDED
    assert again.order_id == order.order_id
    assert balance(shop, "alice") == FUNDS  # paid once, refunded once
    with pytest.raises(FencedOutError):
        shop.checkout.cancel_order("alice", order.order_id, first)  # the dead attempt


def test_a_release_taken_over_after_it_committed_answers_released(
    shop: Services, clock: FakeClock
) -> None:
    hold = shop.booking.place_hold("alice", PoolClaim("ev", POOL, 2))
    keys = Keys(shop, clock, f"/holds/{hold.hold_id}")
    first = keys.attempt()
    shop.booking.release_hold("alice", hold.hold_id, first)  # committed; answer lost

    again = shop.booking.release_hold("alice", hold.hold_id, keys.take_over())
    assert again.status is HoldStatus.RELEASED
    assert held_units(shop) == 0
    with pytest.raises(FencedOutError):
        shop.booking.release_hold("alice", hold.hold_id, first)


def test_cancelling_a_refunded_order_again_answers_refunded_and_refunds_once(
    shop: Services,
) -> None:
    order = shop.checkout.quick_buy("alice", SeatClaim("ev", (SEAT,))).order
    shop.checkout.cancel_order("alice", order.order_id)
    assert shop.checkout.cancel_order("alice", order.order_id).status is OrderStatus.REFUNDED
    assert balance(shop, "alice") == FUNDS


def test_another_buyers_order_cannot_be_cancelled_even_once_refunded(shop: Services) -> None:
    order = shop.checkout.quick_buy("alice", SeatClaim("ev", (SEAT,))).order
    shop.checkout.cancel_order("alice", order.order_id)
    with pytest.raises(NotFoundError):
        shop.checkout.cancel_order("bob", order.order_id)


# -- two at once: the one that loses the race answers as it stands -----------------------------


def _backends_waiting_on_a_lock(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("operation", ["cancel", "release"])
def test_two_concurrent_cancels_or_releases_both_succeed_and_give_back_once(
    pg_server: ThrowawayPostgres, clock: FakeClock, operation: str
) -> None:
    """Both read the order (hold) as confirmed (active) before either writes: a row lock the
    test holds queues both writes, then lets them go. The loser's conditional write finds
    the row moved on; it re-reads and answers the state the winner left."""
    dsn = pg_server.create_database(f"twice_at_once_{operation}")
    with ExitStack() as stack:
        shop = stack.enter_context(_shop(dsn, clock))
        if operation == "cancel":
            target = shop.checkout.quick_buy("alice", SeatClaim("ev", (SEAT,))).order.order_id
            table, column, done = "orders", "order_id", OrderStatus.REFUNDED

            def run() -> object:
                return shop.checkout.cancel_order("alice", target).status

        else:
            target = shop.booking.place_hold("alice", PoolClaim("ev", POOL, 2)).hold_id
            table, column, done = "holds", "hold_id", HoldStatus.RELEASED

            def run() -> object:
                return shop.booking.release_hold("alice", target).status

        gate = stack.enter_context(psycopg.connect(dsn))
        gate.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR UPDATE", (target,))
        pool = stack.enter_context(ThreadPoolExecutor(2))
        both = [pool.submit(run) for _ in range(2)]
        deadline = time.monotonic() + 60
        while _backends_waiting_on_a_lock(dsn) < 2:
            assert time.monotonic() < deadline, "the two writes never queued"
            time.sleep(0.01)  # polling PostgreSQL's view of the queue, not ordering by time
        gate.commit()
        assert [f.result(60) for f in both] == [done, done]
        assert balance(shop, "alice") == FUNDS
        assert held_units(shop) == 0
