"""Many app servers, one database: buyers race over real HTTP, round-robin across servers.

Each server is its own `lastseat serve` process with its own pool and availability cache; the
only shared truth is the database. Every guarded strategy must sell the last seat once;
`naive` (with a payment delay in the servers) must visibly sell it more than once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import open_store
from lastseat.concurrency.registry import GUARDED_NAMES
from lastseat.lab.runner import RaceConfig, RaceResult, run_race
from lastseat.lab.scenarios import Scenario
from lastseat.service.snapshot import Snapshot

SERVERS = 3
BUYERS = 300
SEAT = "race/A/0001/0001"


def http_race(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str, scenario: Scenario, delay_ms: float
) -> tuple[RaceResult, Snapshot]:
    db = pg_server.create_database(
        f"http_{strategy.replace('-', '_')}_{scenario.name}".replace("-", "_")
    )
    config = RaceConfig(
        scenario, processes=4, threads=8, payment_delay_ms=delay_ms, servers=SERVERS
    )
    result = run_race(config, strategy, db, tmp_path / "history.jsonl")
    store = open_store(db, create=False)
    try:
        return result, store.snapshot()
    finally:
        store.close()


@pytest.mark.parametrize("strategy", GUARDED_NAMES)
def test_three_hundred_buyers_over_three_servers_get_exactly_one_ticket(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str
) -> None:
    scenario = Scenario("last-seat", BUYERS, seats=1, poor_fraction=0.0)
    result, snapshot = http_race(pg_server, tmp_path, strategy, scenario, delay_ms=1.0)
    valid = Counter(t.seat_id for t in snapshot.tickets if t.status == "valid")
    assert result.attempts == BUYERS
    assert result.ok == 1 and result.rejected == BUYERS - 1 and result.errors == 0
    assert valid == Counter({SEAT: 1})
    assert len(result.server_peak_rss_mb) == SERVERS
    assert result.verdict_ok, result.violations


def test_naive_over_three_servers_sells_the_last_seat_more_than_once(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    scenario = Scenario("last-seat", BUYERS, seats=1, poor_fraction=0.0)
    result, snapshot = http_race(pg_server, tmp_path, "naive", scenario, delay_ms=20.0)
    valid = Counter(t.seat_id for t in snapshot.tickets if t.status == "valid")
    assert valid[SEAT] > 1
    assert "seat_sold_twice" in result.violations


@pytest.mark.parametrize(
    "strategy", ["atomic", "optimistic", "pg-advisory", "redis-lock", "redlock", "zk-lock"]
)
def test_a_fifty_seat_rush_over_three_servers_keeps_every_invariant(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str
) -> None:
    scenario = Scenario("rush", BUYERS, seats=50, poor_fraction=0.1)
    result, snapshot = http_race(pg_server, tmp_path, strategy, scenario, delay_ms=0.0)
    valid = Counter(t.seat_id for t in snapshot.tickets if t.status == "valid")
    assert set(valid.values()) == {1}
    assert result.ok == len(valid)
    assert result.verdict_ok, result.violations


@pytest.mark.parametrize("strategy", ["atomic", "row-lock", "serializable"])
@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("group", BUYERS, seats=60, group_size=4, poor_fraction=0.1),
        Scenario("ga", BUYERS, capacity=200, max_units=4, poor_fraction=0.1),
    ],
    ids=["group", "ga"],
)
def test_groups_and_pools_over_three_servers_keep_every_invariant(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str, scenario: Scenario
) -> None:
    result, snapshot = http_race(pg_server, tmp_path, strategy, scenario, delay_ms=0.0)
    valid = [t for t in snapshot.tickets if t.status == "valid"]
    confirmed = [o for o in snapshot.orders if o.status == "confirmed"]
    assert result.ok == len(confirmed) > 0
    assert len(valid) == sum(o.quantity for o in confirmed)  # no partial group, no lost unit
    assert all(p.sold <= p.capacity for p in snapshot.pools)
    assert result.verdict_ok, result.violations
