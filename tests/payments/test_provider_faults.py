"""Faults of a real provider process, each shown to have happened by the provider's own counters
and ledger, and what the adapter makes of them: retries with the same key, unknown outcomes, and
never a second capture."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from provider_helpers import TEN_EUROS, adapter_for, admin_for

from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.domain.errors import PaymentUnknownError
from lastseat.service.payments import ChargeStatus


def _wait_until_accepting(port: int, timeout_s: float = 10.0) -> None:
    """Poll (readiness, not ordering) until the provider accepts connections again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.02)
        else:
            return
    raise AssertionError(f"port {port} still refuses connections")


def test_a_503_outage_makes_the_outcome_unknown_after_every_attempt(
    faulty_provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(faulty_provider, attempts=3), admin_for(faulty_provider)
    admin.start_outage("503", 60_000)

    with pytest.raises(PaymentUnknownError, match="503"):
        adapter.charge(key, "buyer-1", TEN_EUROS)

    assert admin.counters()["outage_503"] >= 3
    assert adapter.statistics().retries == 2
    assert admin.payment_by_key(key) is None
    admin.start_outage("503", 0)
    assert adapter.charge(key, "buyer-1", TEN_EUROS).status is ChargeStatus.CAPTURED


def test_a_refuse_outage_refuses_connections_and_the_same_key_succeeds_once_it_ends(
    faulty_provider: ThrowawayProvider, key: str
) -> None:
    adapter, admin = adapter_for(faulty_provider, attempts=3), admin_for(faulty_provider)
    adapter.charge(f"{key}-warm", "buyer-1", TEN_EUROS)  # a pooled keep-alive connection
    admin.start_outage("refuse", 1_500)

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", faulty_provider.port), timeout=1.0)
    with pytest.raises(PaymentUnknownError) as unknown:
        adapter.charge(key, "buyer-1", TEN_EUROS)
    assert isinstance(unknown.value.__cause__, httpx.ConnectError)
    assert adapter.statistics().retries == 2

    _wait_until_accepting(faulty_provider.port)
    charge = adapter.charge(key, "buyer-1", TEN_EUROS)
    again = adapter.charge(key, "buyer-1", TEN_EUROS)

    assert charge.status is ChargeStatus.CAPTURED
    assert again == charge
    counters = admin.counters()
    assert counters["refused_windows"] == 1
    assert counters["refused_connections_closed"] >= 1
    made = [p for p in admin.payments() if p.idempotency_key == key]
    assert [(p.payment_id, p.captures) for p in made] == [(charge.payment_id, 1)]


def test_a_capture_whose_answer_never_comes_is_unknown_then_replays_without_a_second_capture(
    key: str,
) -> None:
    faults = {"capture_timeout_rate": 1.0, "hang_ms": 20_000}
    with ThrowawayProvider(faults=faults) as provider:
        adapter, admin = adapter_for(provider, timeout_s=0.5, attempts=2), admin_for(provider)

        with pytest.raises(PaymentUnknownError, match="timed out"):
            adapter.charge(key, "buyer-1", TEN_EUROS)

        # The provider captured: the first answer was held back, the retry's replay too.
        made = admin.payment_by_key(key)
        assert made is not None
        assert (made.status, made.captures) == ("captured", 1)
        counters = admin.counters()
        assert counters["capture_then_timeout"] == 1
        assert counters["replay_then_timeout"] == 1

        admin.set_faults(capture_timeout_rate=0.0)
        charge = adapter.charge(key, "buyer-1", TEN_EUROS)

        assert charge.status is ChargeStatus.CAPTURED
        assert charge.payment_id == made.payment_id
        assert [p.payment_id for p in admin.payments()] == [made.payment_id]
        assert admin.payment_by_key(key) == made  # still one capture, nothing changed


def test_slow_and_delayed_requests_are_counted_and_still_succeed(key: str) -> None:
    faults = {"slow_rate": 1.0, "slow_ms": 300, "latency_ms": 20, "latency_sigma": 0.5}
    with ThrowawayProvider(faults=faults) as provider:
        adapter, admin = adapter_for(provider, timeout_s=10.0), admin_for(provider)
        started = time.monotonic()

        charge = adapter.charge(key, "buyer-1", TEN_EUROS)

        assert charge.status is ChargeStatus.CAPTURED
        assert time.monotonic() - started >= 0.3  # the delay really happened
        counters = admin.counters()
        assert counters["slow"] == 1
        assert counters["delayed"] == 1
        assert adapter.statistics().retries == 0


def test_a_killed_and_restarted_provider_replays_the_same_payment(
    faulty_provider: ThrowawayProvider, key: str
) -> None:
    adapter = adapter_for(faulty_provider, attempts=3)
    charge = adapter.charge(key, "buyer-1", TEN_EUROS)

    faulty_provider.kill()
    with pytest.raises(PaymentUnknownError):
        adapter.charge(f"{key}-while-down", "buyer-1", TEN_EUROS)
    faulty_provider.restart()

    again = adapter.charge(key, "buyer-1", TEN_EUROS)
    assert again == charge
    made = [p for p in admin_for(faulty_provider).payments() if p.idempotency_key == key]
    assert [(p.payment_id, p.captures) for p in made] == [(charge.payment_id, 1)]


def test_an_outage_from_start_up_answers_503_while_reads_still_work(key: str) -> None:
    with ThrowawayProvider(faults={"outage_mode": "503", "outage_ms": 60_000}) as provider:
        adapter, admin = adapter_for(provider, attempts=2), admin_for(provider)

        with pytest.raises(PaymentUnknownError):
            adapter.charge(key, "buyer-1", TEN_EUROS)

        assert admin.payments() == []
        faults = admin.faults()
        assert faults["outage"]["mode"] == "503"
        assert faults["counters"]["outage_503"] == 2
