"""The mixed scenario over HTTP: 2 app servers on PostgreSQL, one SIGKILLed and restarted as
the race runs (and, once, one SIGSTOPped for a while), buyers through the SDK.

A kill loses answers in flight (a commit may or may not have happened); buyers resend with the
same Idempotency-Key on the other server, as a client whose answer was lost would. Every
answer must still be true of the final state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.lab.nemesis import ServerFaults
from lastseat.lab.runner import RaceConfig, RaceResult, run_race
from lastseat.lab.scenarios import Scenario

SCENARIO = Scenario("mixed", 40, seats=30, capacity=30, group_size=4, poor_fraction=0.15, flows=2)


def faulty_race(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str, faults: ServerFaults
) -> RaceResult:
    db = pg_server.create_database(f"mixed_http_{strategy.replace('-', '_')}")
    config = RaceConfig(
        SCENARIO,
        processes=2,
        threads=6,
        payment_delay_ms=1.0,
        servers=2,
        server_faults=faults,
    )
    return run_race(config, strategy, db, tmp_path / "history.jsonl")


@pytest.mark.parametrize(
    "strategy", ["atomic", "row-lock", "serializable", "pg-advisory", "batched"]
)
def test_a_mixed_on_sale_over_two_servers_survives_server_kills(
    pg_server: ThrowawayPostgres, tmp_path: Path, strategy: str
) -> None:
    result = faulty_race(pg_server, tmp_path, strategy, ServerFaults(kill_every_s=1.0))
    assert result.faults["kills"] >= 1
    assert result.faults["restarts"] == result.faults["kills"]
    assert result.ok > 0
    assert result.verdict_ok, result.violations


def test_a_mixed_on_sale_survives_a_paused_server_and_kills(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    result = faulty_race(
        pg_server, tmp_path, "optimistic", ServerFaults(kill_every_s=2.0, pause_s=1.5)
    )
    assert result.faults["pauses"] == 1 and result.faults["kills"] >= 1
    assert result.verdict_ok, result.violations
