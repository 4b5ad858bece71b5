"""`lastseat bench`: HTTP throughput per strategy as a ratio of the same-run database ceiling."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from lastseat.cli.race import parse_strategies
from lastseat.concurrency.registry import GUARDED_NAMES
from lastseat.lab.bench import DEFAULT_CONCURRENCY, BenchRow, bench_scenarios, run_bench

# rich loads when the command runs, not when `lastseat` starts (issue 8).
if TYPE_CHECKING:
    from rich.console import Console

_HEADERS = (
    "scenario",
    "strategy",
    "mode",
    "purchases/s",
    "p50 ms",
    "p99 ms",
    "conflicts",
    "retries",
    "peak RSS MB/server",
    "ratio to direct",
    "checker",
)


@click.command()
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    default=("atomic",),
    show_default=True,
    help="Guarded strategies to measure (repeat or comma-separate; `all`).",
)
@click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    type=click.Choice(["rush", "ga"]),
    default=("rush", "ga"),
    show_default=True,
)
@click.option("--buyers", type=click.IntRange(64, 1_000_000), default=3_000, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(4, 512),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Concurrent buyers (4 processes x concurrency/4 threads).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def bench(
    strategies: tuple[str, ...],
    scenario_names: tuple[str, ...],
    buyers: int,
    concurrency: int,
    as_json: bool,
) -> int:
    """Purchases/s over HTTP with 1 and 2 servers against the same-run direct ceiling."""
    from rich.console import Console  # noqa: PLC0415

    names = [n for n in parse_strategies(strategies) if n in GUARDED_NAMES]
    scenarios = [s for s in bench_scenarios(buyers) if s.name in scenario_names]
    console = Console(stderr=True)

    def progress(row: BenchRow) -> None:
        console.print(
            f"measured {row.scenario} {row.strategy} {row.mode}: "
            f"{row.purchases_per_s:,.0f} purchases/s"
        )

    rows = run_bench(names, scenarios, concurrency=concurrency, on_row=progress)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        _print(rows, Console(width=200))
    return 0 if all(r.verdict_ok for r in rows) else 1


def _print(rows: list[BenchRow], console: Console) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        title="lastseat bench (throwaway PostgreSQL, durable commits)", title_justify="left"
    )
    for header in _HEADERS:
        table.add_column(header, justify="left" if header in _HEADERS[:3] else "right")
    for r in rows:
        table.add_row(
            r.scenario,
            r.strategy,
            r.mode,
            f"{r.purchases_per_s:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.conflicts),
            str(r.retries),
            f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "-",
            f"{r.ratio:.2f}",
            "OK" if r.verdict_ok else "VIOLATED",
        )
    console.print(table)
