"""Idempotency keys at the provider: one payment per key, however often and however concurrently."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from provider_helpers import TEN_EUROS, adapter_for, admin_for

from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.domain.errors import PaymentProviderError
from lastseat.domain.money import Money
from lastseat.service.payments import ChargeStatus


def test_a_repeated_key_returns_the_same_payment_and_captures_once(
    provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(provider), admin_for(provider)
    first = adapter.charge(key, "buyer-1", TEN_EUROS)
    again = adapter.charge(key, "buyer-1", TEN_EUROS)

    raw = httpx.post(
        f"{provider.url}/v1/payments",
        json={"customer": "buyer-1", "amount_minor": 1000, "currency": "EUR", "capture": True},
        headers={"Authorization": f"Bearer {provider.api_key}", "Idempotency-Key": key},
    )

    assert first.status is ChargeStatus.CAPTURED
    assert again == first
    assert raw.status_code == 201
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.json()["id"] == first.payment_id
    made = [p for p in admin.payments() if p.idempotency_key == key]
    assert [(p.payment_id, p.status, p.captures) for p in made] == [
        (first.payment_id, "captured", 1)
    ]
    assert adapter.find_charge(key) == first


def test_twenty_concurrent_charges_with_one_key_make_exactly_one_payment(
    provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(provider), admin_for(provider)
    start = threading.Barrier(20)

    def charge(_: int) -> str | None:
        start.wait()  # all twenty requests leave together
        return adapter.charge(key, "buyer-1", TEN_EUROS).payment_id

    with ThreadPoolExecutor(20) as pool:
        payment_ids = set(pool.map(charge, range(20)))

    made = [p for p in admin.payments() if p.idempotency_key == key]
    assert len(made) == 1
    assert payment_ids == {made[0].payment_id}
    assert made[0].captures == 1
    assert adapter.statistics().calls == 20


def test_the_same_key_with_a_different_amount_is_refused_and_charges_nothing_more(
    provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(provider), admin_for(provider)
    adapter.charge(key, "buyer-1", TEN_EUROS)

    with pytest.raises(PaymentProviderError, match="422"):
        adapter.charge(key, "buyer-1", Money(999, "EUR"))

    made = [p for p in admin.payments() if p.idempotency_key == key]
    assert [p.amount_minor for p in made] == [1000]
    assert adapter.statistics().provider_errors == 1


def test_a_repeated_refund_key_refunds_once(provider: ThrowawayProvider, key: str) -> None:
    adapter, admin = adapter_for(provider), admin_for(provider)
    charge = adapter.charge(key, "buyer-1", TEN_EUROS)
    assert charge.payment_id is not None

    first = adapter.refund(f"{key}-refund", charge.payment_id, Money(600, "EUR"))
    again = adapter.refund(f"{key}-refund", charge.payment_id, Money(600, "EUR"))

    assert again == first
    refunds = [r for r in admin.refunds() if r.payment_id == charge.payment_id]
    assert [(r.refund_id, r.amount_minor) for r in refunds] == [(first.refund_id, 600)]
    payment = admin.payment_by_key(key)
    assert payment is not None
    assert payment.refunded_minor == 600


def test_refunds_never_exceed_the_capture_even_when_they_race(
    provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(provider), admin_for(provider)
    charge = adapter.charge(key, "buyer-1", TEN_EUROS)
    payment_id = charge.payment_id
    assert payment_id is not None
    start = threading.Barrier(10)

    def refund(number: int) -> bool:
        start.wait()
        try:
            adapter.refund(f"{key}-refund-{number}", payment_id, Money(300, "EUR"))
        except PaymentProviderError:
            return False
        return True

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(refund, range(10)))

    # 3 x 300 fit into 1000; a fourth would make 1200.
    assert outcomes.count(True) == 3
    refunds = [r for r in admin.refunds() if r.payment_id == payment_id]
    assert sum(r.amount_minor for r in refunds) == 900
    payment = admin.payment_by_key(key)
    assert payment is not None
    assert payment.refunded_minor == 900
    with pytest.raises(PaymentProviderError, match="409"):
        adapter.refund(f"{key}-too-much", payment_id, Money(101, "EUR"))
    adapter.refund(f"{key}-the-rest", payment_id, Money(100, "EUR"))
    payment = admin.payment_by_key(key)
    assert payment is not None
    assert payment.refunded_minor == 1000


def test_a_decline_is_an_answer_stored_under_its_key() -> None:
    key = f"test-pay-{uuid.uuid4().hex}"
    with ThrowawayProvider(faults={"decline_rate": 1.0}) as provider:
        adapter, admin = adapter_for(provider), admin_for(provider)
        first = adapter.charge(key, "buyer-1", TEN_EUROS)
        again = adapter.charge(key, "buyer-1", TEN_EUROS)

        assert first.status is ChargeStatus.DECLINED
        assert first.decline_code
        assert again == first
        payments = admin.payments()
        assert [(p.payment_id, p.status, p.captures) for p in payments] == [
            (first.payment_id, "declined", 0)
        ]
        # The replay is not a second decline: only injected faults are counted.
        assert admin.counters()["declined"] == 1
        assert adapter.statistics().declines == 2
