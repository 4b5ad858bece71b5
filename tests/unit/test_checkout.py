"""The checkout through a provider outside the database, on both backends, with a scripted
provider (fast and deterministic; the real HTTP provider process is exercised in
tests/payments and tests/checkout). Time is a FakeClock: leases end when a test moves it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from lastseat.bootstrap import build, open_store
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import (
    HoldExpiredError,
    InvalidTransitionError,
    PaymentDeclinedError,
    PaymentUnknownError,
    UnavailableError,
)
from lastseat.domain.holds import PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.service.checkout import Checkout
from lastseat.service.payments import Charge, ChargeStatus, Refund
from lastseat.service.ports import Store

NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0)
EUR = "EUR"
EVENT = "ev1"
POOL = f"{EVENT}/standing"
SEAT_1, SEAT_2 = (seat_id_for(EVENT, "A", 1, n) for n in (1, 2))
PRICE = 1_000
LEASE = timedelta(seconds=30)
TTL = timedelta(minutes=10)


class ServerDied(BaseException):
    """Stands for kill -9 between the provider's capture and our confirmation."""


@dataclass
class ScriptedProvider:
    """A card processor that dedupes by key, answering from a script: `captured`,
    `declined`, `unknown` (never reached the provider), `lost` (captured, answer lost),
    `crash` (captured, then the calling server dies)."""

    script: list[str] = field(default_factory=list)
    name: str = "scripted"
    transactional: bool = False
    captures: Counter[str] = field(default_factory=Counter)
    results: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    refund_script: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(self, payment_key: str, buyer_id: str, amount: Money) -> Charge:
        with self.lock:
            if payment_key in self.results:
                return self.results[payment_key]
            step = self.script.pop(0) if self.script else "captured"
            if step == "unknown":
                raise PaymentUnknownError("timed out before reaching the provider")
            if step == "declined":
                result = Charge(payment_key, ChargeStatus.DECLINED, None, amount, "card_declined")
            else:
                self.captures[payment_key] += 1
                result = Charge(payment_key, ChargeStatus.CAPTURED, f"pay-{payment_key}", amount)
            self.results[payment_key] = result
        if step == "lost":
            raise PaymentUnknownError("captured, but the answer was lost")
        if step == "crash":
            raise ServerDied
        return result

    def refund(self, refund_key: str, payment_id: str, amount: Money) -> Refund:
        with self.lock:
            if self.refund_script and self.refund_script.pop(0) == "unknown":
                raise PaymentUnknownError("refund timed out")
            return self.refunds.setdefault(
                refund_key, Refund(refund_key, f"re-{refund_key}", payment_id, amount)
            )

    def close(self) -> None:
        pass


@dataclass
class Till:
    checkout: Checkout
    provider: ScriptedProvider
    clock: FakeClock
    store: Store

    def free_seats(self) -> set[str]:
        availability = self.checkout.booking.availability(EVENT)
        return {s.seat_id for s in availability.seats if s.available}

    def order_status(self, order_id: str) -> OrderStatus:
        return self.checkout.booking.purchase("alice", order_id).order.status

    def payment_statuses(self) -> Counter[str]:
        return Counter(p.status for p in self.store.snapshot().payments)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def till(store: Store) -> Till:
    clock = FakeClock()
    services = build(store, "atomic", clock=clock, retry=NO_WAIT)
    services.catalog.create_event(
        build_event(
            EVENT,
            "Show",
            EUR,
            [SeatBlock("A", 1, 2, Money(PRICE, EUR))],
            [("standing", 5, Money(PRICE, EUR))],
        )
    )
    provider = ScriptedProvider()
    return Till(Checkout(services.booking, provider, payment_lease=LEASE), provider, clock, store)


def test_a_captured_charge_confirms_the_order_with_tickets_and_no_transaction_spans_it(
    till: Till,
) -> None:
    purchase = till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    assert purchase.order.status is OrderStatus.CONFIRMED
    assert [t.seat_id for t in purchase.tickets] == [SEAT_1]
    assert SEAT_1 not in till.free_seats()
    assert till.payment_statuses() == {"captured": 1}
    assert sum(till.provider.captures.values()) == 1


def test_a_declined_charge_fails_the_order_and_gives_the_seat_back(till: Till) -> None:
    till.provider.script = ["declined"]
    with pytest.raises(PaymentDeclinedError):
        till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    assert SEAT_1 in till.free_seats()
    (order,) = till.store.snapshot().orders
    assert order.status == "failed"
    assert till.payment_statuses() == {"declined": 1}
    assert not till.store.snapshot().tickets


@pytest.mark.parametrize("fault", ["unknown", "lost"])
def test_an_unknown_outcome_answers_pending_and_the_reconciler_settles_it_with_one_capture(
    till: Till, fault: str
) -> None:
    till.provider.script = [fault]
    pending = till.checkout.quick_buy("alice", PoolClaim(EVENT, POOL, 2))
    assert pending.order.status is OrderStatus.PENDING_PAYMENT
    assert not pending.tickets
    assert till.checkout.reconcile().examined == 0  # too early: the retry delay runs
    till.clock.advance(timedelta(seconds=3))
    report = till.checkout.reconcile()
    assert report.confirmed == 1
    assert till.order_status(pending.order.order_id) is OrderStatus.CONFIRMED
    assert sum(till.provider.captures.values()) == 1
    assert till.checkout.reconcile().examined == 0  # nothing left to drive


def test_a_server_dying_between_capture_and_confirm_is_finished_by_the_reconciler(
    till: Till,
) -> None:
    till.provider.script = ["crash"]
    with pytest.raises(ServerDied):
        till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    (order,) = till.store.snapshot().orders
    assert order.status == "pending_payment"
    assert till.checkout.reconcile().examined == 0  # the dead request's lease still runs
    till.clock.advance(LEASE)
    assert till.checkout.reconcile().confirmed == 1
    assert till.order_status(order.order_id) is OrderStatus.CONFIRMED
    assert sum(till.provider.captures.values()) == 1


def test_money_landing_after_the_hold_lapsed_reclaims_the_seat_if_still_free(till: Till) -> None:
    till.provider.script = ["unknown"]
    pending = till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    till.clock.advance(TTL + timedelta(seconds=1))
    assert till.checkout.booking.expire_lapsed_holds() == 1
    assert SEAT_1 in till.free_seats()
    assert till.checkout.reconcile().confirmed == 1
    assert till.order_status(pending.order.order_id) is OrderStatus.CONFIRMED
    assert SEAT_1 not in till.free_seats()


def test_money_landing_after_the_seat_was_sold_to_another_is_refunded(till: Till) -> None:
    till.provider.script = ["unknown"]
    pending = till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    till.clock.advance(TTL + timedelta(seconds=1))
    other = till.checkout.quick_buy("bob", SeatClaim(EVENT, (SEAT_1,)))
    assert other.order.status is OrderStatus.CONFIRMED
    report = till.checkout.reconcile()
    assert report.refunded == 1
    assert till.order_status(pending.order.order_id) is OrderStatus.EXPIRED
    assert till.payment_statuses() == {"captured": 1, "refunded": 1}
    assert len(till.provider.refunds) == 1


def test_a_refund_the_provider_does_not_answer_is_retried_by_the_reconciler(till: Till) -> None:
    purchase = till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    till.provider.refund_script = ["unknown"]
    till.checkout.cancel_order("alice", purchase.order.order_id)
    assert SEAT_1 in till.free_seats()
    assert till.payment_statuses() == {"refund_pending": 1}
    till.clock.advance(timedelta(seconds=3))
    till.checkout.reconcile()
    assert till.payment_statuses() == {"refunded": 1}
    assert till.order_status(purchase.order.order_id) is OrderStatus.REFUNDED


def test_paying_a_hold_twice_opens_one_order(till: Till) -> None:
    hold = till.checkout.booking.place_hold("alice", SeatClaim(EVENT, (SEAT_2,)))
    till.provider.script = ["unknown"]
    pending = till.checkout.pay_hold("alice", hold.hold_id)
    assert pending.order.status is OrderStatus.PENDING_PAYMENT
    with pytest.raises(InvalidTransitionError):
        till.checkout.pay_hold("alice", hold.hold_id)
    with pytest.raises(InvalidTransitionError):
        till.checkout.booking.release_hold("alice", hold.hold_id)


def test_a_hold_whose_order_is_being_paid_cannot_be_released_even_once_it_lapsed(
    till: Till,
) -> None:
    """Its payment may still re-claim and convert it: "expired" would not stay true."""
    hold = till.checkout.booking.place_hold("alice", SeatClaim(EVENT, (SEAT_2,)))
    till.provider.script = ["unknown"]
    till.checkout.pay_hold("alice", hold.hold_id)
    till.clock.advance(TTL + timedelta(seconds=1))
    with pytest.raises(InvalidTransitionError):
        till.checkout.booking.release_hold("alice", hold.hold_id)
    till.checkout.booking.expire_lapsed_holds()  # expired, order still being paid
    with pytest.raises(InvalidTransitionError):
        till.checkout.booking.release_hold("alice", hold.hold_id)


def test_a_lapsed_hold_is_paid_by_claiming_its_seat_again(till: Till) -> None:
    hold = till.checkout.booking.place_hold("alice", SeatClaim(EVENT, (SEAT_2,)))
    till.clock.advance(TTL + timedelta(seconds=1))
    purchase = till.checkout.pay_hold("alice", hold.hold_id)
    assert purchase.order.status is OrderStatus.CONFIRMED
    assert SEAT_2 not in till.free_seats()


def test_a_lapsed_hold_whose_seat_was_sold_is_refused_and_nothing_is_charged(till: Till) -> None:
    hold = till.checkout.booking.place_hold("alice", SeatClaim(EVENT, (SEAT_2,)))
    till.clock.advance(TTL + timedelta(seconds=1))
    till.checkout.quick_buy("bob", SeatClaim(EVENT, (SEAT_2,)))
    with pytest.raises(HoldExpiredError):
        till.checkout.pay_hold("alice", hold.hold_id)
    assert sum(till.provider.captures.values()) == 1  # bob's only


def test_a_taken_seat_is_refused_before_any_charge(till: Till) -> None:
    till.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT_1,)))
    with pytest.raises(UnavailableError):
        till.checkout.quick_buy("bob", SeatClaim(EVENT, (SEAT_1,)))
    assert sum(till.provider.captures.values()) == 1


def test_many_reconcilers_at_once_settle_each_payment_once(till: Till) -> None:
    till.provider.script = ["lost"] * 5
    orders = [till.checkout.quick_buy("alice", PoolClaim(EVENT, POOL, 1)) for _ in range(5)]
    assert all(p.order.status is OrderStatus.PENDING_PAYMENT for p in orders)
    till.clock.advance(timedelta(seconds=3))
    start = threading.Barrier(4)
    reports = []

    def reconcile() -> None:
        start.wait()
        reports.append(till.checkout.reconcile())

    threads = [threading.Thread(target=reconcile) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.confirmed for r in reports) == 5  # each payment driven by exactly one
    assert till.payment_statuses() == {"captured": 5}
    assert len(till.store.snapshot().tickets) == 5
    assert max(till.provider.captures.values()) == 1
