"""`lastseat race` (the race lab) and `lastseat check` (re-check a saved run)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lastseat.concurrency.registry import GUARDED_NAMES, LOCK_SERVICE_NAMES, STRATEGY_NAMES
from lastseat.domain.errors import UnsafeStrategyError, ValidationError
from lastseat.lab.history import read_history
from lastseat.lab.scenarios import SCENARIOS, default_scenario

# The lab, the checker, the stores and rich load when a command runs, not when `lastseat`
# starts: `lastseat --help` and every other command need none of them (issue 8).
if TYPE_CHECKING:
    from rich.console import Console

    from lastseat.lab.databases import RaceTarget
    from lastseat.lab.runner import RaceConfig, RaceResult

_POSITIVE = click.IntRange(min=1)
_NON_NEGATIVE = click.IntRange(min=0)


# `all` is every strategy that needs nothing but the database: the lock-service ones start
# Redis / ZooKeeper servers (ZooKeeper needs Java), so they run when named.
ALL_WITHOUT_LOCK_SERVICES: tuple[str, ...] = tuple(
    n for n in STRATEGY_NAMES if n not in LOCK_SERVICE_NAMES
)


def parse_strategies(values: tuple[str, ...]) -> list[str]:
    """`all`, one name, several names or a comma-separated list, in table order; `all` with
    names adds them (`all,zk-lock`: every strategy and the ZooKeeper one)."""
    names = {n.strip() for v in values for n in v.split(",") if n.strip()}
    if not names or names == {"all"}:
        return list(ALL_WITHOUT_LOCK_SERVICES)
    if "all" in names:
        names = (names - {"all"}) | set(ALL_WITHOUT_LOCK_SERVICES)
    unknown = sorted(names - set(STRATEGY_NAMES))
    if unknown:
        raise ValidationError(
            f"unknown strategy {unknown[0]!r}; choose from all, {', '.join(STRATEGY_NAMES)}"
        )
    return [n for n in STRATEGY_NAMES if n in names]


@click.command()
@click.option(
    "--scenario",
    type=click.Choice(SCENARIOS),
    default="last-seat",
    show_default=True,
    help="last-seat: 1 seat; rush: many seats, hot ones; group: k adjacent seats; "
    "ga: a general-admission pool; mixed: an on-sale's workload (buys, groups, GA, best "
    "available, holds paid late or released, cancels, reads, resends) on seats and a pool.",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    default=("all",),
    show_default=True,
    help=f"all (every strategy but the lock-service ones), or one or more of: "
    f"{', '.join(STRATEGY_NAMES)} (repeat or comma-separate).",
)
@click.option("--buyers", type=_POSITIVE, help="Concurrent buyers (scenario default if omitted).")
@click.option("--seats", type=_POSITIVE, help="Assigned seats (last-seat, rush, group).")
@click.option("--capacity", type=_NON_NEGATIVE, help="Pool capacity (ga).")
@click.option("--group-size", type=_POSITIVE, help="Adjacent seats each buyer wants (group).")
@click.option("--skew", type=click.FloatRange(min=1.0), help="Hot-seat skew, 1 = uniform.")
@click.option(
    "--poor-buyers",
    type=click.FloatRange(0.0, 1.0),
    default=0.05,
    show_default=True,
    help="Fraction of buyers whose wallet is one cent short (their charge fails).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Worker OS processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Concurrent buyers (threads, own connections) per process.",
)
@click.option(
    "--payment-delay-ms",
    type=click.FloatRange(0.0, 10_000.0),
    default=2.0,
    show_default=True,
    help="Time the payment takes, between check and mark-sold.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the buyer plan.")
@click.option(
    "--sync",
    "synchronous",
    type=click.Choice(["normal", "full"]),
    default="normal",
    show_default=True,
    help="SQLite synchronous mode of the race databases.",
)
@click.option(
    "--db",
    "db_path",
    help="`postgres`: a throwaway PostgreSQL server; `postgresql://…`: an existing empty "
    "database (one strategy); a path: keep SQLite files (one per strategy if several). "
    "Default: throwaway SQLite files.",
)
@click.option(
    "--servers",
    type=click.IntRange(0, 16),
    default=0,
    show_default=True,
    help="Start this many `lastseat serve` processes and buy over HTTP, round-robin "
    "(0: buyers call the service in-process).",
)
@click.option(
    "--payments",
    type=click.Choice(["wallet", "external"]),
    default="wallet",
    show_default=True,
    help="wallet: charge the internal ledger in the claiming transaction; external: a "
    "throwaway card processor (`lastseat payments serve`) with the fault knobs below "
    "(implies --servers 2 unless given).",
)
@click.option(
    "--provider-latency-ms",
    type=click.FloatRange(0.0, 60_000.0),
    default=2.0,
    show_default=True,
    help="external: the provider's median latency (log-normal spread).",
)
@click.option(
    "--decline-rate", type=click.FloatRange(0.0, 1.0), default=0.0, help="external: share declined."
)
@click.option(
    "--slow-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="external: share of provider calls delayed by --slow-ms.",
)
@click.option("--slow-ms", type=click.FloatRange(0.0, 60_000.0), default=1_500.0, show_default=True)
@click.option(
    "--capture-timeout-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="external: share of captures that succeed and then never answer.",
)
@click.option(
    "--outage",
    type=click.Choice(["503", "refuse"]),
    default="503",
    show_default=True,
    help="external: how the provider is down during --outage-ms.",
)
@click.option(
    "--outage-ms",
    type=click.FloatRange(0.0, 600_000.0),
    default=0.0,
    help="external: an outage window of this length, opened once 20% of buyers are done.",
)
@click.option(
    "--resend-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Over HTTP: share of purchases sent again with the same Idempotency-Key.",
)
@click.option(
    "--hold-ttl-s",
    type=click.IntRange(0, 86_400),
    default=0,
    help="Over HTTP: the servers' hold TTL (0: their default, 10 min); a short one makes slow "
    "payments outlive their holds (re-claim or automatic refund).",
)
@click.option(
    "--cancel-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Over HTTP: share of bought orders the buyer cancels at once (refunds).",
)
@click.option(
    "--kill-every",
    type=click.FloatRange(0.0, 3_600.0),
    default=0.0,
    metavar="SECONDS",
    help="Over HTTP: SIGKILL a random app server once a fifth of the buyers are done, then this "
    "often, and restart it on its port (0: never).",
)
@click.option(
    "--pause",
    type=click.FloatRange(0.0, 3_600.0),
    default=0.0,
    metavar="SECONDS",
    help="Over HTTP: SIGSTOP one app server for this long once a fifth of the buyers are "
    "done, then SIGCONT it (0: never).",
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the history (JSON Lines) here (one per strategy if several).",
)
@click.option(
    "--allow-unsafe",
    is_flag=True,
    help="Allow `naive` on a database you keep (--db); throwaway races allow it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (every field).")
@click.option(
    "--wide",
    is_flag=True,
    help="Every column in one table, however wide (default: the main columns, stacked to fit "
    "the terminal).",
)
def race(
    scenario: str,
    strategies: tuple[str, ...],
    buyers: int | None,
    seats: int | None,
    capacity: int | None,
    group_size: int | None,
    skew: float | None,
    poor_buyers: float,
    processes: int,
    threads: int,
    payment_delay_ms: float,
    seed: int,
    synchronous: str,
    db_path: str | None,
    servers: int,
    payments: str,
    provider_latency_ms: float,
    decline_rate: float,
    slow_rate: float,
    slow_ms: float,
    capture_timeout_rate: float,
    outage: str,
    outage_ms: float,
    resend_rate: float,
    cancel_rate: float,
    hold_ttl_s: int,
    kill_every: float,
    pause: float,
    history_path: Path | None,
    allow_unsafe: bool,
    as_json: bool,
    wide: bool,
) -> int:
    """Race concurrent buyers against each strategy and check every invariant."""
    from lastseat.lab.databases import THROWAWAY_POSTGRES, race_targets  # noqa: PLC0415
    from lastseat.lab.payments import PaymentFaults  # noqa: PLC0415
    from lastseat.lab.report import to_json  # noqa: PLC0415
    from lastseat.lab.runner import RaceConfig  # noqa: PLC0415

    names = parse_strategies(strategies)
    if "naive" in names and db_path not in (None, THROWAWAY_POSTGRES) and not allow_unsafe:
        raise UnsafeStrategyError(
            "strategy 'naive' sells seats twice on purpose; pass --allow-unsafe to keep its "
            "database, or drop --db"
        )
    base = default_scenario(scenario)
    chosen = replace(
        base,
        buyers=buyers or base.buyers,
        seats=seats or base.seats,
        capacity=base.capacity if capacity is None else capacity,
        group_size=group_size or base.group_size,
        skew=skew or base.skew,
        poor_fraction=poor_buyers,
    )
    faults = PaymentFaults(
        provider_latency_ms,
        slow_rate,
        slow_ms,
        decline_rate,
        capture_timeout_rate,
        outage,
        outage_ms,
        resend_rate=resend_rate,
        cancel_rate=cancel_rate,
        hold_ttl_s=hold_ttl_s,
    )
    if payments == "external" and not servers:
        servers = 2  # the provider is reached from app servers, buyers come over HTTP
    if (resend_rate or cancel_rate) and not servers:
        raise ValidationError("--resend-rate and --cancel-rate need buyers over HTTP (--servers N)")
    if (kill_every or pause) and not servers:
        raise ValidationError("--kill-every and --pause need app servers (--servers N)")
    from lastseat.lab.nemesis import ServerFaults  # noqa: PLC0415

    config = RaceConfig(
        chosen,
        processes,
        threads,
        payment_delay_ms,
        seed,
        synchronous.upper(),
        servers,
        payments,
        faults,
        ServerFaults(kill_every, pause),
    )
    console = _console(stderr=as_json)
    with race_targets(names, db_path, history_path) as targets:
        raced = [_run_one(config, t, console, as_json) for t in targets]
    results = [_without_throwaway_paths(r, db_path) for r in raced]
    if as_json:
        click.echo(to_json(results))
    else:
        _print_summary(results, config, console, wide=wide)
    broken = [r for r in results if r.strategy in GUARDED_NAMES and not r.verdict_ok]
    return 1 if broken else 0


def _console(*, stderr: bool) -> Console:
    from rich.console import Console  # noqa: PLC0415

    # On a terminal (or with COLUMNS set) the table fits its width; a pipe or a file gets 200
    # columns rather than rich's 80, so a log keeps the one-table layout.
    width = None if Console().is_terminal or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, width=width)


def _without_throwaway_paths(result: RaceResult, db_option: str | None) -> RaceResult:
    """The result naming only files that outlive the race (throwaway ones are deleted by now)."""
    from lastseat.lab.databases import THROWAWAY_POSTGRES  # noqa: PLC0415

    db_kept = db_option not in (None, THROWAWAY_POSTGRES)
    history_kept = Path(result.history_path).is_file()
    return replace(
        result,
        db_path=result.db_path if db_kept else "",
        history_path=result.history_path if history_kept else "",
    )


def _run_one(config: RaceConfig, target: RaceTarget, console: Console, quiet: bool) -> RaceResult:
    from lastseat.lab.runner import run_race  # noqa: PLC0415

    label = f"{target.strategy:<10}"
    with _progress(console, label, config.scenario.buyers, enabled=not quiet) as tick:
        return run_race(config, target.strategy, target.db, target.history, on_progress=tick)


def _print_summary(
    results: list[RaceResult], config: RaceConfig, console: Console, *, wide: bool
) -> None:
    from lastseat.lab.report import naive_note, race_title, render_payments, render_table  # noqa: PLC0415

    render_table(results, console, race_title(config), wide=wide)
    if config.payments == "external":
        render_payments(results, console)
    if any(r.strategy == "naive" for r in results):
        console.print(naive_note(config), highlight=False)
    for r in results:
        kept = [
            f"{what} {path}"
            for what, path in (("history", r.history_path), ("database", r.db_path))
            if path
        ]
        if kept:
            console.print(f"{r.strategy}: kept " + ", ".join(kept), highlight=False)


@contextmanager
def _progress(
    console: Console, label: str, total: int, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    if not enabled or not console.is_terminal:
        yield lambda done: None
        return
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@click.command("check")
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--db",
    "db_path",
    help="The run's database (default: HISTORY with a .db suffix).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def check_command(history: Path, db_path: str | None, as_json: bool) -> int:
    """Re-check a saved race: its history against its final database state."""
    from lastseat.bootstrap import open_store  # noqa: PLC0415
    from lastseat.lab.checker import check  # noqa: PLC0415
    from lastseat.lab.report import violations_json  # noqa: PLC0415

    if not history.is_file():
        raise ValidationError(f"no history file at {history}")
    operations = list(read_history(history))
    store = open_store(db_path or str(history.with_suffix(".db")), create=False)
    try:
        verdict = check(operations, store.snapshot())
    finally:
        store.close()
    attempts = sum(1 for op in operations if op.type == "invoke")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": verdict.ok,
                    "attempts": attempts,
                    "history_records": len(operations),
                    "tickets_sold": verdict.tickets_sold,
                    "oversold": verdict.oversold,
                    "double_charges": verdict.double_charges,
                    "violations": violations_json(verdict.violations),
                },
                indent=2,
            )
        )
    else:
        for v in verdict.violations[:50]:
            click.echo(f"{v.kind}: {v.detail}")
        more = len(verdict.violations) - 50
        if more > 0:
            click.echo(f"... and {more} more")
        click.echo(
            f"{_counted(attempts, 'attempt')} ({_counted(len(operations), 'history record')}), "
            f"{_counted(verdict.tickets_sold, 'ticket')} sold, {verdict.oversold:,} oversold, "
            f"{_counted(verdict.double_charges, 'double charge')}: "
            f"{'OK' if verdict.ok else 'VIOLATED'}"
        )
    return 0 if verdict.ok else 1


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
