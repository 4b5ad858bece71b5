"""The checkout against the real provider process (`lastseat payments serve`), one fault at a
time: each test shows its fault happened (the provider's own counters and ledger) and that,
after reconciliation, every capture has a confirmed order and nothing is left unknown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.http import HttpPaymentProvider
from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.bootstrap import build, open_store
from lastseat.domain.errors import PaymentDeclinedError
from lastseat.domain.holds import SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import OrderStatus
from lastseat.service.booking import Purchase
from lastseat.service.checkout import Checkout
from lastseat.service.ports import Store

EUR = "EUR"
EVENT = "ev1"
SEAT = seat_id_for(EVENT, "A", 1, 1)
PRICE = 2_500
WAIT_S = 30.0


@dataclass
class Rig:
    checkout: Checkout
    store: Store
    admin: ProviderAdmin
    provider: ThrowawayProvider

    def buy(self) -> Purchase:
        return self.checkout.quick_buy("alice", SeatClaim(EVENT, (SEAT,)))

    def captures(self) -> int:
        return sum(1 for p in self.admin.payments() if p.status == "captured")

    def order_status(self, order_id: str) -> OrderStatus:
        return self.checkout.booking.purchase("alice", order_id).order.status

    def reconcile_until_settled(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while any(
            p.status in ("pending", "refund_pending") for p in self.store.snapshot().payments
        ):
            assert time.monotonic() < deadline, "payments still unknown after reconciling"
            self.checkout.reconcile()

    def assert_every_capture_has_its_ticket(self) -> None:
        snapshot = self.store.snapshot()
        orders = {o.order_id: o for o in snapshot.orders}
        valid = {t.order_id for t in snapshot.tickets if t.status == "valid"}
        for payment in self.admin.payments():
            if payment.status != "captured":
                continue
            order_id = payment.idempotency_key.removeprefix("lastseat-pay-")
            assert orders[order_id].status == "confirmed"
            assert order_id in valid
        assert not [o for o in snapshot.orders if o.status == "pending_payment"]


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    faults = getattr(request, "param", {})
    with ThrowawayProvider(seed=7, faults=faults) as provider:
        store = open_store(str(tmp_path / "shop.db"))
        services = build(store, "atomic")
        services.catalog.create_event(
            build_event(EVENT, "Show", EUR, [SeatBlock("A", 1, 1, Money(PRICE, EUR))], [])
        )
        http = HttpPaymentProvider(provider.url, provider.api_key, timeout_s=0.5, attempts=2)
        # No delay before a reconciler may retry: the tests drive the reconciler themselves.
        checkout = Checkout(services.booking, http, retry_delay=timedelta(0))
        admin = ProviderAdmin(provider.url, provider.api_key)
        try:
            yield Rig(checkout, store, admin, provider)
        finally:
            admin.close()
            http.close()
            store.close()


@pytest.mark.parametrize("rig", [{"decline_rate": 1.0}], indirect=True)
def test_a_decline_fails_the_order_frees_the_seat_and_nothing_is_captured(rig: Rig) -> None:
    with pytest.raises(PaymentDeclinedError):
        rig.buy()
    assert rig.admin.counters()["declined"] == 1
    assert rig.captures() == 0
    (order,) = rig.store.snapshot().orders
    assert order.status == "failed"
    assert SEAT in {
        s.seat_id for s in rig.checkout.booking.availability(EVENT).seats if s.available
    }


def test_a_503_outage_leaves_the_order_pending_until_the_reconciler_confirms_it(rig: Rig) -> None:
    rig.admin.start_outage("503", 60_000)
    pending = rig.buy()
    assert pending.order.status is OrderStatus.PENDING_PAYMENT
    assert rig.admin.counters()["outage_503"] >= 2  # both of the adapter's attempts
    rig.admin.start_outage("503", 0)
    rig.reconcile_until_settled()
    assert rig.order_status(pending.order.order_id) is OrderStatus.CONFIRMED
    assert rig.captures() == 1
    rig.assert_every_capture_has_its_ticket()


def test_refused_connections_leave_the_order_pending_until_the_provider_is_back(rig: Rig) -> None:
    rig.admin.start_outage("refuse", 1_500)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{rig.provider.url}/healthz", timeout=1.0)  # the fault is real: refused
    pending = rig.buy()
    assert pending.order.status is OrderStatus.PENDING_PAYMENT
    _wait_until_accepting(rig.provider.url)
    rig.reconcile_until_settled()
    assert rig.order_status(pending.order.order_id) is OrderStatus.CONFIRMED
    assert rig.admin.counters()["refused_windows"] == 1
    assert rig.captures() == 1
    rig.assert_every_capture_has_its_ticket()


@pytest.mark.parametrize("rig", [{"capture_timeout_rate": 1.0, "hang_ms": 3_000}], indirect=True)
def test_a_capture_whose_answer_never_comes_is_settled_once_by_the_reconciler(rig: Rig) -> None:
    pending = rig.buy()
    assert pending.order.status is OrderStatus.PENDING_PAYMENT
    assert rig.admin.counters()["capture_then_timeout"] == 1
    assert rig.captures() == 1  # the money was taken, the answer lost
    rig.admin.set_faults(capture_timeout_rate=0.0)
    rig.reconcile_until_settled()
    assert rig.order_status(pending.order.order_id) is OrderStatus.CONFIRMED
    assert rig.captures() == 1  # the reconciler's charge was a replay, not a second capture
    rig.assert_every_capture_has_its_ticket()


@pytest.mark.parametrize("rig", [{"slow_rate": 1.0, "slow_ms": 200}], indirect=True)
def test_a_slow_provider_within_the_timeout_confirms_at_once(rig: Rig) -> None:
    purchase = rig.buy()
    assert purchase.order.status is OrderStatus.CONFIRMED
    assert rig.admin.counters()["slow"] == 1
    assert rig.captures() == 1
    rig.assert_every_capture_has_its_ticket()


def _wait_until_accepting(url: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1.0)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the provider never came back"
            time.sleep(0.05)  # polling for the end of an outage window, not ordering a race
