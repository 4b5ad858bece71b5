"""`lastseat bench`: purchases per second over HTTP against the same-run database ceiling.

For each scenario and strategy, one throwaway PostgreSQL server at its default durability
(`synchronous_commit = on`, fsync on) runs, each on a fresh database:

- `direct`: the buyers call the service in-process, so each purchase is the identical SQL
  transaction driven straight through psycopg at the same concurrency — the ceiling;
- `http xN`: the same buyers over real HTTP through N `lastseat serve` processes.

The figure that matters is the ratio http/direct measured in the same run, not an absolute
rate: these machines are small and noisy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lastseat.lab.scenarios import Scenario

if TYPE_CHECKING:
    from lastseat.lab.runner import RaceResult

DEFAULT_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One measured configuration."""

    scenario: str
    strategy: str
    mode: str
    purchases_per_s: float
    p50_ms: float
    p99_ms: float
    conflicts: int
    retries: int
    peak_rss_mb: float
    ratio: float
    verdict_ok: bool


def bench_scenarios(buyers: int) -> list[Scenario]:
    """`rush` (hot assigned seats) and `ga` (one hot pool, one unit per buyer), no poor buyers."""
    return [
        Scenario("rush", buyers, seats=buyers, poor_fraction=0.0),
        Scenario("ga", buyers, capacity=buyers, max_units=1, poor_fraction=0.0),
    ]


def run_bench(
    strategies: Sequence[str],
    scenarios: Sequence[Scenario],
    server_counts: Sequence[int] = (1, 2),
    concurrency: int = DEFAULT_CONCURRENCY,
    on_row: Callable[[BenchRow], None] = lambda row: None,
) -> list[BenchRow]:
    """Measure every (scenario, strategy, mode); rows come in the order they were measured."""
    # Imported here, so that `lastseat --help` can read DEFAULT_CONCURRENCY without loading
    # the lab and PostgreSQL (start-up time, issue 8).
    from lastseat.adapters.postgres.server import ThrowawayPostgres  # noqa: PLC0415
    from lastseat.lab.runner import RaceConfig, run_race  # noqa: PLC0415

    processes = 4
    threads = max(1, concurrency // processes)
    rows: list[BenchRow] = []
    with ThrowawayPostgres() as server, tempfile.TemporaryDirectory() as scratch:
        number = 0
        for scenario in scenarios:
            for strategy in strategies:
                ceiling = 0.0
                for servers in (0, *server_counts):
                    number += 1
                    config = RaceConfig(scenario, processes, threads, 0.0, 1, "FULL", servers)
                    db = server.create_database(f"bench_{number}")
                    result = run_race(config, strategy, db, Path(scratch) / f"{number}.jsonl")
                    ceiling = ceiling or result.purchases_per_s
                    row = _row(result, servers, ceiling)
                    rows.append(row)
                    on_row(row)
    return rows


def _row(result: RaceResult, servers: int, ceiling: float) -> BenchRow:
    return BenchRow(
        scenario=result.scenario,
        strategy=result.strategy,
        mode=f"http x{servers}" if servers else "direct",
        purchases_per_s=result.purchases_per_s,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        conflicts=result.conflicts,
        retries=result.retries,
        peak_rss_mb=max(result.server_peak_rss_mb, default=0.0),
        ratio=result.purchases_per_s / ceiling if ceiling else 0.0,
        verdict_ok=result.verdict_ok,
    )
