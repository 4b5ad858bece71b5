"""External payments in a race: the provider process, its faults, and settling afterwards.

`lastseat race --payments external` starts a throwaway card processor (`lastseat payments
serve`) with the fault knobs asked for, points the app servers at it, opens an outage window
once a share of the buyers has gone through, and after the race turns the faults off and runs
the reconciler until no payment is left unknown - then reads the provider's ledger for the
checker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from lastseat.adapters.payments.admin import ProviderAdmin
from lastseat.adapters.payments.server import ThrowawayProvider
from lastseat.bootstrap import PaymentSettings, build, open_store
from lastseat.domain.payments import UNSETTLED
from lastseat.lab.checker import ProviderLedger, ProviderPayment, ProviderRefund
from lastseat.service.checkout import ReconcileReport
from lastseat.service.ports import Store

SETTLE_TIMEOUT_S = 120.0
SETTLE_POLL_S = 0.2
# Short enough that a lab run does not wait long on a hung capture, long enough for the
# provider's normal latency on a busy machine.
LAB_PROVIDER_TIMEOUT_MS = 1_000
LAB_HANG_MS = 3_000


@dataclass(frozen=True, slots=True)
class PaymentFaults:
    """The provider's fault knobs for one race, and the lab's duplicate-request rate."""

    latency_ms: float = 2.0
    slow_rate: float = 0.0
    slow_ms: float = 1_500.0
    decline_rate: float = 0.0
    capture_timeout_rate: float = 0.0
    outage_mode: str = "503"  # or "refuse"
    outage_ms: float = 0.0  # 0: no outage window
    outage_after: float = 0.2  # the window opens once this share of buyers is done
    resend_rate: float = 0.0
    cancel_rate: float = 0.0  # buyers who cancel what they bought (refunds at the provider)
    hold_ttl_s: int = 0  # > 0: the servers' hold TTL, so slow payments outlive their holds

    def provider_flags(self) -> dict[str, float | str]:
        """The provider's start flags for these faults (without dashes)."""
        return {
            "latency_ms": self.latency_ms,
            "latency_sigma": 0.5 if self.latency_ms else 0.0,
            "slow_rate": self.slow_rate,
            "slow_ms": self.slow_ms,
            "decline_rate": self.decline_rate,
            "capture_timeout_rate": self.capture_timeout_rate,
            "hang_ms": LAB_HANG_MS,
        }


@dataclass(frozen=True, slots=True)
class SettleReport:
    """What settling after the race took and found."""

    passes: int
    reconciled: ReconcileReport
    unsettled_left: int
    fault_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ProviderHandle:
    """A running provider: where it is, how the app servers reach it, and its admin API."""

    provider: ThrowawayProvider
    admin: ProviderAdmin

    def settings(self) -> PaymentSettings:
        """The app servers' payment settings for this provider."""
        return PaymentSettings(
            "external",
            self.provider.url,
            self.provider.api_key,
            provider_timeout_ms=LAB_PROVIDER_TIMEOUT_MS,
        )


@contextmanager
def external_provider(faults: PaymentFaults, seed: int) -> Iterator[ProviderHandle]:
    """A provider process with `faults`, removed on exit."""
    with ThrowawayProvider(seed=seed, faults=faults.provider_flags()) as provider:
        admin = ProviderAdmin(provider.url, provider.api_key)
        try:
            yield ProviderHandle(provider, admin)
        finally:
            admin.close()


@contextmanager
def outage_window(
    handle: ProviderHandle | None, faults: PaymentFaults, buyers_done: Callable[[], float]
) -> Iterator[None]:
    """Open the provider's outage window once `outage_after` of the buyers are done."""
    if handle is None or not faults.outage_ms:
        yield
        return
    stop = threading.Event()

    def trigger() -> None:
        while not stop.is_set():
            if buyers_done() >= faults.outage_after:
                handle.admin.start_outage(faults.outage_mode, faults.outage_ms)
                return
            stop.wait(0.01)

    thread = threading.Thread(target=trigger, name="outage-trigger", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def settle(db: str, handle: ProviderHandle) -> SettleReport:
    """Faults off (the outage is over), then reconcile until no payment is left unknown."""
    handle.admin.set_faults(
        latency_ms=0.0, slow_rate=0.0, decline_rate=0.0, capture_timeout_rate=0.0
    )
    store = open_store(db, create=False)
    try:
        checkout = build(store, "atomic", payments=handle.settings()).checkout
        total, passes = ReconcileReport(), 0
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            passes += 1
            total = _added(total, checkout.reconcile(limit=1_000))
            left = _unsettled(store)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(SETTLE_POLL_S)  # leases of unknown outcomes end after a short delay
        checkout.provider.close()
    finally:
        store.close()
    return SettleReport(passes, total, left, handle.admin.counters())


def provider_ledger(handle: ProviderHandle) -> ProviderLedger:
    """The provider's records, as the checker reads them."""
    return ProviderLedger(
        payments=tuple(
            ProviderPayment(
                p.payment_id, p.idempotency_key, p.status, p.amount_minor, p.currency, p.captures
            )
            for p in handle.admin.payments()
        ),
        refunds=tuple(
            ProviderRefund(r.refund_id, r.payment_id, r.idempotency_key, r.amount_minor, r.currency)
            for r in handle.admin.refunds()
        ),
    )


def _unsettled(store: Store) -> int:
    unsettled = {status.value for status in UNSETTLED}
    return sum(1 for p in store.snapshot().payments if p.status in unsettled)


def _added(total: ReconcileReport, more: ReconcileReport) -> ReconcileReport:
    return ReconcileReport(
        total.examined + more.examined,
        total.confirmed + more.confirmed,
        total.failed + more.failed,
        total.refunded + more.refunded,
        more.still_unknown,
    )
