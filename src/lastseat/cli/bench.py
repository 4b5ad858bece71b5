"""`lastseat bench`: purchases/s per strategy against the ceilings measured in the same run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from lastseat.cli.errors import fail
from lastseat.cli.race import ALL_WITHOUT_LOCK_SERVICES, parse_strategies
from lastseat.concurrency.registry import GUARDED_NAMES
from lastseat.lab.bench import (
    DATABASES,
    DEFAULT_CEILING_S,
    DEFAULT_CONCURRENCY,
    BenchPlan,
    BenchReport,
    bench_scenarios,
    run_bench,
)

# rich and the lab's rows load when the command runs, not when `lastseat` starts (issue 8).
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lastseat.lab.bench_rows import StrategyRow
    from lastseat.lab.ceilings import Ceiling

MAX_SERVERS = 8


def _server_counts(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    counts: set[int] = set()
    for part in value.split(","):
        text = part.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_SERVERS:
            raise click.BadParameter(f"server counts are 1..{MAX_SERVERS}, comma-separated")
        counts.add(int(text))
    return tuple(sorted(counts))


@click.command()
@click.option(
    "--db",
    type=click.Choice(DATABASES),
    default="postgres",
    show_default=True,
    help="postgres: a throwaway server, ceilings, direct and HTTP rows. sqlite: every "
    "strategy direct in 4 processes against one process's raw conditional-update loop.",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help="Guarded strategies to measure (repeat or comma-separate; `all`). "
    "Default: atomic on postgres; the race's guarded strategies on sqlite.",
)
@click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    type=click.Choice(["rush", "ga"]),
    default=("rush", "ga"),
    show_default=True,
)
@click.option("--buyers", type=click.IntRange(1, 1_000_000), default=3_000, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(4, 512),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Concurrent buyers and ceiling connections (direct: 4 processes x concurrency/4).",
)
@click.option(
    "--servers",
    "server_counts",
    default="1,2",
    show_default=True,
    callback=_server_counts,
    help="Server counts for the HTTP rows and the HTTP ceiling (postgres).",
)
@click.option(
    "--ceiling-s",
    type=click.FloatRange(0.1, 600.0),
    default=DEFAULT_CEILING_S,
    show_default=True,
    help="How long each ceiling runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print ceilings, rows and ratios as JSON.")
def bench(
    db: str,
    strategies: tuple[str, ...],
    scenario_names: tuple[str, ...],
    buyers: int,
    concurrency: int,
    server_counts: tuple[int, ...],
    ceiling_s: float,
    as_json: bool,
) -> int:
    """Purchases/s direct and over HTTP against the same-run ceilings (see docs/performance.md)."""
    from rich.console import Console  # noqa: PLC0415

    from lastseat.lab.loadprocs import LoadError  # noqa: PLC0415

    if strategies:
        names = [n for n in parse_strategies(strategies) if n in GUARDED_NAMES]
    elif db == "sqlite":
        names = [n for n in ALL_WITHOUT_LOCK_SERVICES if n in GUARDED_NAMES]
    else:
        names = ["atomic"]
    if not names:
        raise click.BadParameter("name at least one guarded strategy", param_hint="--strategy")
    plan = BenchPlan(
        strategies=tuple(names),
        scenarios=tuple(s for s in bench_scenarios(buyers) if s.name in scenario_names),
        db=db,
        concurrency=concurrency,
        server_counts=server_counts,
        ceiling_s=ceiling_s,
    )
    progress = Console(stderr=True)
    try:
        report = run_bench(plan, on_progress=progress.print)
    except LoadError as exc:
        fail(str(exc), 1)
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2))
    else:
        print_report(report, Console(width=200))
    return 0 if report.verdict_ok else 1


def report_json(report: BenchReport) -> dict[str, Any]:
    """Every ceiling, row and ratio, with the batch mean and the ratio's verdict spelled out."""
    return {
        "db": report.db,
        "concurrency": report.concurrency,
        "ceilings": [asdict(c) for c in report.ceilings],
        "rows": [{**asdict(r), "mean_batch": r.mean_batch} for r in report.rows],
        "ratios": [{**asdict(r), "verdict": r.verdict} for r in report.ratios],
    }


def print_report(report: BenchReport, console: Console) -> None:
    """The ceilings, the strategy rows and the ratios, as three tables."""
    kind = "PostgreSQL, durable commits" if report.db == "postgres" else "SQLite, synchronous=FULL"
    console.print(
        _table(
            f"ceilings (throwaway {kind})",
            _CEILING_HEADERS,
            [_ceiling_cells(c) for c in report.ceilings],
        )
    )
    console.print(
        _table(
            f"lastseat bench ({kind}, {report.concurrency} concurrent buyers)",
            _ROW_HEADERS,
            [_row_cells(r, _direct_rate(report.rows, r)) for r in report.rows],
        )
    )
    ratios = [
        (q.name, q.scenario, q.strategy, _value(q.value), q.target or "-", q.verdict)
        for q in report.ratios
    ]
    console.print(_table("ratios (issue 9 targets)", _RATIO_HEADERS, ratios))


def _table(title: str, headers: tuple[str, ...], cells: Sequence[tuple[str, ...]]) -> Table:
    """A table of `cells`; a server-side column with nothing but "-" in it is left out."""
    from rich.table import Table  # noqa: PLC0415

    keep = [
        i
        for i, header in enumerate(headers)
        if header not in _OPTIONAL or any(row[i] != "-" for row in cells)
    ]
    table = Table(title=title, title_justify="left")
    for i in keep:
        table.add_column(headers[i], justify="left" if headers[i] in _WORDS else "right")
    for row in cells:
        table.add_row(*(row[i] for i in keep))
    return table


def _value(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


_WORDS = frozenset({"ceiling", "scenario", "strategy", "mode", "ratio", "target", "verdict"})
_RATIO_HEADERS = ("ratio", "scenario", "strategy", "value", "target", "verdict")
# Columns that only HTTP rows fill: left out of a table where no row has them (SQLite).
_OPTIONAL = frozenset(
    {"servers", "resent", "peak RSS MB/server", "load CPU", "server CPU", "÷ direct"}
)


_CEILING_HEADERS = (
    "ceiling",
    "connections",
    "servers",
    "per s",
    "p50 ms",
    "p99 ms",
    "load CPU",
    "server CPU",
    "machine CPU",
)
_ROW_HEADERS = (
    "scenario",
    "strategy",
    "mode",
    "purchases/s",
    "p50 ms",
    "p99 ms",
    "conflicts",
    "retries",
    "resent",
    "batch mean/max",
    "peak RSS MB/server",
    "load CPU",
    "server CPU",
    "machine CPU",
    "÷ direct",
    "checker",
)


def _ceiling_cells(c: Ceiling) -> tuple[str, ...]:
    return (
        c.name,
        str(c.connections),
        str(c.servers) if c.servers else "-",
        f"{c.per_s:,.0f}",
        f"{c.p50_ms:.1f}",
        f"{c.p99_ms:.1f}",
        f"{c.load_cpu_share:.0%}",
        _share(c.server_cpu_share),
        _share(c.machine_cpu_share),
    )


def _row_cells(r: StrategyRow, direct_per_s: float) -> tuple[str, ...]:
    mean = r.mean_batch
    return (
        r.scenario,
        r.strategy,
        r.mode,
        f"{r.purchases_per_s:,.0f}",
        f"{r.p50_ms:.1f}",
        f"{r.p99_ms:.1f}",
        str(r.conflicts),
        str(r.retries),
        str(r.client_retries) if r.servers else "-",
        _batch_cell(mean, r.max_batch),
        f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "-",
        _share(r.load_cpu_share),
        _share(r.server_cpu_share),
        _share(r.machine_cpu_share),
        f"{r.purchases_per_s / direct_per_s:.2f}" if direct_per_s and r.servers else "-",
        "OK" if r.verdict_ok else "VIOLATED",
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _batch_cell(mean: float | None, largest: int) -> str:
    if mean is not None:
        return f"{mean:.1f}/{largest}"
    return f"-/{largest}" if largest else "-"


def _direct_rate(rows: list[StrategyRow], row: StrategyRow) -> float:
    for other in rows:
        if (other.scenario, other.strategy, other.mode) == (row.scenario, row.strategy, "direct"):
            return other.purchases_per_s
    return 0.0
