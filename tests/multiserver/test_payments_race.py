"""The payments race: buyers over HTTP through 2 app servers that pay a real provider process
with faults on, a share of purchases resent with the same Idempotency-Key, a share cancelled
(refunds), an outage window mid-race; then the reconciler, then the checker with the
provider's own ledger.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import open_store
from lastseat.lab.payments import PaymentFaults
from lastseat.lab.runner import RaceConfig, run_race
from lastseat.lab.scenarios import Scenario

BUYERS = 240


@pytest.mark.parametrize("outage", ["503", "refuse"])
def test_a_rush_paid_through_a_faulty_provider_keeps_every_invariant(
    pg_server: ThrowawayPostgres, tmp_path: Path, outage: str
) -> None:
    db = pg_server.create_database(f"payments_rush_{outage}")
    faults = PaymentFaults(
        decline_rate=0.05,
        capture_timeout_rate=0.05,
        slow_rate=0.02,
        slow_ms=1_500,
        outage_mode=outage,
        outage_ms=1_000,
        resend_rate=0.25,
        cancel_rate=0.1,
    )
    config = RaceConfig(
        Scenario("rush", BUYERS, seats=80, poor_fraction=0.0),
        processes=3,
        threads=8,
        payment_delay_ms=0.0,
        servers=2,
        payments="external",
        faults=faults,
    )
    result = run_race(config, "atomic", db, tmp_path / "history.jsonl")
    payments = result.payments
    assert payments is not None
    # The faults happened: the provider counted them itself.
    assert payments.faults["declined"] > 0
    assert payments.faults["capture_then_timeout"] > 0
    assert payments.faults.get("outage_503", 0) + payments.faults.get("refused_windows", 0) > 0
    assert payments.pending_answers > 0  # some buyers heard "202, not known yet"
    assert payments.resends > 0 and payments.replays > 0
    assert payments.refunds > 0  # cancelled orders were refunded at the provider
    assert payments.unknown_resolved == payments.unknown_outcomes
    assert payments.unsettled_left == 0
    assert result.verdict_ok, result.violations
    store = open_store(db, create=False)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    statuses = Counter(p.status for p in snapshot.payments)
    assert statuses["captured"] + statuses["refunded"] == payments.captures
    assert statuses["refunded"] == payments.refunds
    # One seat per buyer in a rush: every capture not refunded is one ticket.
    assert payments.captures - payments.refunds == result.tickets_sold


def test_payments_outliving_their_one_second_holds_are_reclaimed_or_refunded(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = pg_server.create_database("payments_lapsed_holds")
    config = RaceConfig(
        Scenario("rush", 600, seats=30, poor_fraction=0.0),
        processes=2,
        threads=4,
        payment_delay_ms=0.0,
        servers=2,
        payments="external",
        # A capture whose answer hangs makes the server retry after 1 s: by then its hold
        # has lapsed, and another buyer may have taken the seat.
        faults=PaymentFaults(capture_timeout_rate=0.3, hold_ttl_s=1),
    )
    result = run_race(config, "atomic", db, tmp_path / "history.jsonl")
    payments = result.payments
    assert payments is not None
    assert payments.faults["capture_then_timeout"] > 0
    assert result.tickets_sold == 30
    # Every capture is a ticket, or was refunded because its seat went to someone else.
    assert payments.captures - payments.refunds == result.tickets_sold
    assert payments.unsettled_left == 0
    assert result.verdict_ok, result.violations
