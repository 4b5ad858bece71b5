"""`lastseat bench`: purchases per second against the ceilings measured in the same run.

PostgreSQL (the default): one throwaway server at its default durability
(`synchronous_commit = on`, fsync on) serves the whole run, in this order:

1. ceilings (lab.ceilings, lab.http_load): the bare hot-row `UPDATE` at the bench's
   concurrency and at 4 connections, the SKIP LOCKED seat-claim loop, and the HTTP ceiling
   (`POST /bench/ceiling`: the server stack, no database work) through 1 and 2 servers;
2. per scenario (`rush`, `ga`) and strategy, each on a fresh database (lab.bench_rows):
   `direct` (the purchase transaction driven in-process), then `http xN`;
3. the ratios of issue 9's targets (lab.bench_ratios), each met or not.

SQLite (`--db sqlite`): per scenario, every strategy asked for driven directly by 4 worker
processes, against one process's raw conditional-update loop, all with `synchronous=FULL`.

The figures that matter are the ratios measured in the same run, not absolute rates: these
machines are small and noisy. Every load generator reports its CPU share, so a reader can see
whether it, rather than the server, may have set a figure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lastseat.lab.scenarios import Scenario

# The row and ratio modules load the race lab and its checker: only when a bench runs.
if TYPE_CHECKING:
    from lastseat.lab.bench_ratios import Ratio
    from lastseat.lab.bench_rows import StrategyRow
    from lastseat.lab.ceilings import Ceiling

DEFAULT_CONCURRENCY = 64
DEFAULT_CEILING_S = 5.0
FEW_CONNECTIONS = 4
DATABASES = ("postgres", "sqlite")
SEATS_PER_SECOND = 40_000  # seats laid out per second of SKIP LOCKED run: never sold out


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """What one `lastseat bench` run measures."""

    strategies: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    db: str = "postgres"
    concurrency: int = DEFAULT_CONCURRENCY
    server_counts: tuple[int, ...] = (1, 2)
    ceiling_s: float = DEFAULT_CEILING_S


@dataclass(slots=True)
class BenchReport:
    """Everything measured: ceilings first, then strategy rows, then ratios."""

    db: str
    concurrency: int
    ceilings: list[Ceiling] = field(default_factory=list)
    rows: list[StrategyRow] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    @property
    def verdict_ok(self) -> bool:
        """True when the checker found nothing wrong in any strategy row."""
        return all(r.verdict_ok for r in self.rows)


def bench_scenarios(buyers: int) -> list[Scenario]:
    """`rush` (hot assigned seats) and `ga` (one hot pool, one unit per buyer), no poor buyers."""
    return [
        Scenario("rush", buyers, seats=buyers, poor_fraction=0.0),
        Scenario("ga", buyers, capacity=buyers, max_units=1, poor_fraction=0.0),
    ]


def run_bench(
    plan: BenchPlan, on_progress: Callable[[str], None] = lambda line: None
) -> BenchReport:
    """Measure what `plan` asks for; `on_progress` hears one line per measurement."""
    report = BenchReport(plan.db, plan.concurrency)
    with tempfile.TemporaryDirectory(prefix="lastseat-bench-") as scratch:
        if plan.db == "sqlite":
            _sqlite_bench(plan, report, Path(scratch), on_progress)
        else:
            _postgres_bench(plan, report, Path(scratch), on_progress)
    return report


def _postgres_bench(
    plan: BenchPlan, report: BenchReport, scratch: Path, say: Callable[[str], None]
) -> None:
    # Imported here, so that `lastseat --help` can read the defaults without loading the lab,
    # the drivers and PostgreSQL (start-up time, issue 8).
    from lastseat.adapters.postgres.server import ThrowawayPostgres  # noqa: PLC0415
    from lastseat.lab.bench_ratios import postgres_ratios  # noqa: PLC0415
    from lastseat.lab.bench_rows import direct_row, http_row  # noqa: PLC0415

    # Room for every buyer's or ceiling's connection, the servers' pools and the bench's own.
    connections = max(200, plan.concurrency + 150)
    with ThrowawayPostgres({"max_connections": str(connections)}) as server:
        for ceiling in _postgres_ceilings(plan, server.create_database("bench_ceilings")):
            report.ceilings.append(ceiling)
            say(_ceiling_line(ceiling))
        number = 0
        for scenario in plan.scenarios:
            for strategy in plan.strategies:
                for servers in (0, *plan.server_counts):
                    number += 1
                    db = server.create_database(f"bench_{number}")
                    history = scratch / f"{number}.jsonl"
                    row = (
                        http_row(scenario, strategy, db, history, plan.concurrency, servers)
                        if servers
                        else direct_row(scenario, strategy, db, history, plan.concurrency, "FULL")
                    )
                    report.rows.append(row)
                    say(_row_line(row))
    report.ratios = postgres_ratios(report.ceilings, report.rows, plan.concurrency)


def _postgres_ceilings(plan: BenchPlan, dsn: str) -> list[Ceiling]:
    from lastseat.lab.ceilings import postgres_ceiling, setup_postgres  # noqa: PLC0415
    from lastseat.lab.cpu import ProcessCpu  # noqa: PLC0415
    from lastseat.lab.http_load import http_ceiling  # noqa: PLC0415
    from lastseat.lab.servers import server_fleet  # noqa: PLC0415

    seats = max(10_000, int(plan.ceiling_s * SEATS_PER_SECOND))
    setup_postgres(dsn, seats)
    found = [
        postgres_ceiling(dsn, "hot-row", plan.concurrency, plan.ceiling_s),
        postgres_ceiling(dsn, "hot-row", FEW_CONNECTIONS, plan.ceiling_s),
        postgres_ceiling(dsn, "skip-locked", plan.concurrency, plan.ceiling_s, seats),
    ]
    counts = sorted(set(plan.server_counts))
    if counts:
        with server_fleet(max(counts), dsn, "atomic") as fleet:
            for count in counts:
                servers = ProcessCpu(fleet.pids[:count])
                ceiling = http_ceiling(
                    fleet.urls[:count], fleet.token_secret, plan.concurrency, plan.ceiling_s
                )
                found.append(replace(ceiling, server_cpu_share=servers.share(ceiling.wall_s)))
    return found


def _sqlite_bench(
    plan: BenchPlan, report: BenchReport, scratch: Path, say: Callable[[str], None]
) -> None:
    from lastseat.lab.bench_ratios import sqlite_ratios  # noqa: PLC0415
    from lastseat.lab.bench_rows import direct_row  # noqa: PLC0415
    from lastseat.lab.ceilings import sqlite_ceiling  # noqa: PLC0415

    ceiling = sqlite_ceiling(scratch / "ceiling.db", plan.ceiling_s, "FULL")
    report.ceilings.append(ceiling)
    say(_ceiling_line(ceiling))
    for number, (scenario, strategy) in enumerate(
        (s, n) for s in plan.scenarios for n in plan.strategies
    ):
        db = str(scratch / f"bench_{number}.db")
        row = direct_row(
            scenario, strategy, db, scratch / f"{number}.jsonl", plan.concurrency, "FULL"
        )
        report.rows.append(row)
        say(_row_line(row))
    report.ratios = sqlite_ratios(report.ceilings, report.rows)


def _ceiling_line(ceiling: Ceiling) -> str:
    where = f"{ceiling.servers} server(s)" if ceiling.servers else f"{ceiling.connections} conns"
    return f"measured ceiling {ceiling.name} ({where}): {ceiling.per_s:,.0f}/s"


def _row_line(row: StrategyRow) -> str:
    return (
        f"measured {row.scenario} {row.strategy} {row.mode}: {row.purchases_per_s:,.0f} purchases/s"
    )
