"""One contract, every strategy: real OS processes racing over one SQLite file.

Each race runs >= 200 buyers in 4 worker processes x 8 threads (each thread its own
connection), all released at once by a barrier. The guarded strategies must keep every
invariant; `naive` must visibly break them, which shows these tests can fail.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lastseat.bootstrap import open_store
from lastseat.concurrency.registry import GUARDED_NAMES
from lastseat.lab.runner import RaceConfig, RaceResult, run_race
from lastseat.lab.scenarios import Scenario
from lastseat.service.snapshot import Snapshot

GUARDED = list(GUARDED_NAMES)
PROCESSES = 4


def race(
    tmp_path: Path, db_url: str, strategy: str, scenario: Scenario, delay_ms: float = 1.0
) -> tuple[RaceResult, Snapshot]:
    config = RaceConfig(scenario, processes=PROCESSES, threads=8, payment_delay_ms=delay_ms)
    result = run_race(config, strategy, db_url, tmp_path / f"{strategy}.jsonl")
    store = open_store(db_url, create=False)
    try:
        return result, store.snapshot()
    finally:
        store.close()


def valid_tickets_per_seat(snapshot: Snapshot) -> Counter[str]:
    return Counter(t.seat_id for t in snapshot.tickets if t.status == "valid" and t.seat_id)


@pytest.mark.parametrize("strategy", GUARDED)
def test_two_hundred_buyers_racing_for_one_seat_produce_exactly_one_ticket(
    tmp_path: Path, db_url: str, strategy: str
) -> None:
    result, snapshot = race(
        tmp_path, db_url, strategy, Scenario("last-seat", 240, seats=1, poor_fraction=0.0)
    )
    assert result.attempts == 240
    assert result.ok == 1
    assert result.rejected == 239
    assert valid_tickets_per_seat(snapshot) == Counter({"race/A/0001/0001": 1})
    assert result.verdict_ok, result.violations


def test_naive_sells_the_last_seat_more_than_once(tmp_path: Path, db_url: str) -> None:
    result, snapshot = race(
        tmp_path,
        db_url,
        "naive",
        Scenario("last-seat", 240, seats=1, poor_fraction=0.0),
        delay_ms=20.0,
    )
    assert valid_tickets_per_seat(snapshot)["race/A/0001/0001"] > 1
    assert not result.verdict_ok
    assert "seat_sold_twice" in result.violations


@pytest.mark.parametrize("strategy", GUARDED)
def test_groups_of_four_adjacent_seats_are_sold_whole_or_not_at_all(
    tmp_path: Path, db_url: str, strategy: str
) -> None:
    scenario = Scenario("group", 240, seats=40, group_size=4, poor_fraction=0.1)
    result, snapshot = race(tmp_path, db_url, strategy, scenario)
    tickets_per_order = Counter(t.order_id for t in snapshot.tickets if t.status == "valid")
    confirmed = [o for o in snapshot.orders if o.status == "confirmed"]
    assert confirmed, "some groups must have been sold"
    assert all(tickets_per_order[o.order_id] == 4 for o in confirmed)
    assert set(valid_tickets_per_seat(snapshot).values()) == {1}
    held_or_sold = [s for s in snapshot.seats if s.status != "available"]
    assert len(held_or_sold) == 4 * len(confirmed)  # nothing left claimed by a failed group
    assert result.verdict_ok, result.violations


@pytest.mark.parametrize("strategy", GUARDED)
def test_a_general_admission_pool_never_sells_above_capacity(
    tmp_path: Path, db_url: str, strategy: str
) -> None:
    scenario = Scenario("ga", 240, capacity=150, max_units=4, poor_fraction=0.1)
    result, snapshot = race(tmp_path, db_url, strategy, scenario)
    (pool,) = snapshot.pools
    valid = sum(1 for t in snapshot.tickets if t.status == "valid")
    assert valid == pool.sold <= pool.capacity
    assert pool.held == 0
    if strategy != "row-lock-nowait":  # nowait turns most collisions into refusals instead
        assert pool.capacity - pool.sold < 4  # sold out up to the last few units
    assert result.verdict_ok, result.violations


def test_naive_oversells_a_general_admission_pool(tmp_path: Path, db_url: str) -> None:
    scenario = Scenario("ga", 240, capacity=150, max_units=4, poor_fraction=0.0)
    result, snapshot = race(tmp_path, db_url, "naive", scenario, delay_ms=5.0)
    (pool,) = snapshot.pools
    valid = sum(1 for t in snapshot.tickets if t.status == "valid")
    assert valid > pool.sold  # lost updates: tickets issued that the counter never saw
    assert "pool_count_mismatch" in result.violations


@pytest.mark.parametrize("strategy", [*GUARDED, "naive"])
def test_failed_charges_leave_no_money_taken_and_money_is_conserved(
    tmp_path: Path, db_url: str, strategy: str
) -> None:
    scenario = Scenario("rush", 240, seats=100, poor_fraction=0.3)
    result, snapshot = race(tmp_path, db_url, strategy, scenario, delay_ms=0.0)
    assert sum(a.balance_minor for a in snapshot.accounts) == 0
    assert all(a.balance_minor >= 0 for a in snapshot.accounts if a.kind != "world")
    revenue = sum(a.balance_minor for a in snapshot.accounts if a.kind == "revenue")
    sold = sum(o.amount_minor for o in snapshot.orders if o.status == "confirmed")
    assert revenue == sold
    money_kinds = {
        "standing_charge",
        "money_not_conserved",
        "negative_balance",
        "double_charge",
        "charge_without_order",
    }
    assert not money_kinds & set(result.violations)
