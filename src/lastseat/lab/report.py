"""The race comparison table (rich) and its JSON twin for scripts.

The default columns come in groups that `lastseat.lab.tables` packs into as few stacked tables
as the console's width allows (one on a wide terminal, two at 100 columns, three at 80), so no
header or verdict is ever cut. The checker's findings are listed under the tables, where a long
rule name can wrap. `--wide` prints every column in one table at its natural width (for a wide
terminal, a file or `less -S`); `--json` carries every field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from lastseat.lab.checker.violations import Violation
from lastseat.lab.history import BUY_ACTION
from lastseat.lab.runner import PaymentsSummary, RaceConfig, RaceResult
from lastseat.lab.tables import Column, print_whole, stacked_tables, table_of

Result = Column[RaceResult]


def _count(value: int) -> str:
    return f"{value:,}"


def _alarm(count: int) -> str:
    return f"[bold red]{count:,}[/bold red]" if count else "0"


def _rate(count: int, elapsed_s: float) -> str:
    # One decimal below 10/s: a last-seat race sells 1 ticket in a few seconds, not "0".
    per_s = count / elapsed_s if elapsed_s > 0 else 0.0
    return f"{per_s:,.1f}" if per_s < 10 else f"{per_s:,.0f}"


def _ms(value: float) -> str:
    return f"{value:,.2f}"


def _has_operations(results: Sequence[RaceResult]) -> bool:
    # Purchases alone are the attempts column already; a scenario with holds, releases,
    # cancels and reads (`mixed`) gets its own count.
    return any(set(r.operations) - {BUY_ACTION} for r in results)


def _operations_text(result: RaceResult) -> str:
    return ", ".join(f"{action} {n:,}" for action, n in sorted(result.operations.items()))


def _faults_text(result: RaceResult) -> str:
    """Server faults injected (`--kill-every`, `--pause`): `kills 3, pauses 1 (5.0 s)`."""
    faults = result.faults
    shown = []
    for kind, amount in faults.items():
        if not amount or kind == "paused_s":
            continue
        text = f"{kind.replace('_', ' ')} {amount:,.0f}"
        if kind == "pauses" and faults.get("paused_s"):
            text += f" ({faults['paused_s']:,.1f} s)"
        shown.append(text)
    return ", ".join(shown) or "none"


def verdict_text(result: RaceResult) -> str:
    """`OK` or `VIOLATED`; the broken rules are listed by `render_findings`."""
    return "[green]OK[/green]" if result.verdict_ok else "[red]VIOLATED[/red]"


STRATEGY = Result("strategy", lambda r: r.strategy, "left")

# The default columns, by group; a group is never split across two tables.
SOLD = (
    Result("tickets sold", lambda r: _count(r.tickets_sold)),
    Result("oversold", lambda r: _alarm(r.oversold)),
    Result("double charges", lambda r: _alarm(r.double_charges)),
    Result("checker", verdict_text, "left"),
)
WORKLOAD = (
    Result("ops", lambda r: _count(sum(r.operations.values())), shown=_has_operations),
    Result("server faults", _faults_text, "left", shown=lambda rs: any(r.faults for r in rs)),
)
ANSWERS = (
    Result("attempts", lambda r: _count(r.attempts)),
    Result("ok", lambda r: _count(r.ok)),
    Result("rejected", lambda r: _count(r.rejected)),
    Result("errors", lambda r: _alarm(r.errors)),
)
CONTENTION = (
    Result("retries", lambda r: _count(r.retries)),
    Result("lock waits", lambda r: _count(r.lock_waits)),
)
SPEED = (
    Result("attempts /s", lambda r: _rate(r.attempts, r.elapsed_s)),
    Result("p50 ms", lambda r: _ms(r.p50_ms)),
    Result("p99 ms", lambda r: _ms(r.p99_ms)),
)
DEFAULT_GROUPS = (SOLD, WORKLOAD, ANSWERS, CONTENTION, SPEED)

# --wide adds what the default leaves out.
EXTRA = (
    Result("conflicts", lambda r: _count(r.conflicts)),
    Result("lock wait ms", lambda r: _ms(r.lock_wait_ms)),
    Result("lock held ms", lambda r: _ms(r.lock_held_ms)),
    Result(
        "batch mean / max",
        lambda r: f"{r.mean_batch:,.1f} / {r.max_batch:,}" if r.batches else "",
        shown=lambda rs: any(r.batches for r in rs),
    ),
    Result("ok /s", lambda r: _rate(r.ok, r.elapsed_s)),
    Result("elapsed s", lambda r: f"{r.elapsed_s:,.2f}"),
    Result("ops by action", _operations_text, "left", shown=_has_operations),
    Result(
        "server peak RSS MB",
        lambda r: ", ".join(f"{mb:,.0f}" for mb in r.server_peak_rss_mb),
        shown=lambda rs: any(r.server_peak_rss_mb for r in rs),
    ),
)

LEGEND = (
    "oversold: tickets beyond what exists (a seat sold three times counts 2; a pool, its "
    "tickets beyond capacity). rejected: sold out, taken, too little money, declined or hold "
    "expired; errors: any other failure or an unknown outcome. attempts /s: attempts answered "
    "per second of race."
)
FINDINGS_NOTE = "A finding is one seat, pool, order, payment or answer a checker rule caught."
SOLD_TWICE_NOTE = (
    " A seat sold twice is caught twice: by its tickets, and by the holds of the orders that "
    "bought it."
)


def render_table(
    results: Sequence[RaceResult], console: Console, title: str, *, wide: bool = False
) -> None:
    """One row per strategy, in as few stacked tables as fit the console; then the findings."""
    console.print(title, style="bold", highlight=False)
    if wide:
        columns = [STRATEGY, *(c for group in (*DEFAULT_GROUPS, EXTRA) for c in group)]
        table = table_of(columns, results, width=100_000)
        print_whole(console, table)
        render_rules(results, console)
    else:
        _print_stacked(console, stacked_tables(STRATEGY, DEFAULT_GROUPS, results, console.width))
    console.print()
    console.print(LEGEND, style="dim", highlight=False)
    if not all(r.verdict_ok for r in results):
        render_findings(results, console)
        sold_twice = any("seat_sold_twice" in r.violations for r in results)
        note = FINDINGS_NOTE + (SOLD_TWICE_NOTE if sold_twice else "")
        console.print(note, style="dim", highlight=False)


def _print_stacked(console: Console, tables: Sequence[Table]) -> None:
    for index, table in enumerate(tables):
        if index:
            console.print()
        print_whole(console, table)


def render_rules(results: Sequence[RaceResult], console: Console) -> None:
    """Every checker rule's findings per strategy, stacked to fit the console."""
    rules = list(dict.fromkeys(rule for r in results for rule in r.rules))
    if not rules:
        return
    console.print()
    console.print("findings of each checker rule", style="bold")
    groups = [(Result(rule.replace("_", " "), _findings_of(rule)),) for rule in rules]
    _print_stacked(console, stacked_tables(STRATEGY, groups, results, console.width))


def _findings_of(rule: str) -> Callable[[RaceResult], str]:
    return lambda r: _alarm(r.rules.get(rule, 0))


def race_title(config: RaceConfig) -> str:
    """What was raced: the scenario's inventory and buyers, and how they ran."""
    s = config.scenario
    shape = {
        "last-seat": f"{_plural(s.seats, 'seat')}",
        "rush": f"{_plural(s.seats, 'seat')} (hot-seat skew {s.skew:g})",
        "group": f"{_plural(s.seats, 'seat')} in rows of {s.row_length}, "
        f"groups of {s.group_size} adjacent seats",
        "ga": f"a pool of {_plural(s.capacity, 'unit')}, 1-{s.max_units} per buyer",
    }.get(s.name)
    if shape is None:
        inventory = [_plural(s.seats, "seat")] if s.seats else []
        inventory += [f"a pool of {_plural(s.capacity, 'unit')}"] if s.capacity else []
        shape = " and ".join(inventory)
    how = [
        f"{_plural(s.buyers, 'buyer')} ({s.poor_fraction:.0%} one cent short)",
        f"{config.processes} processes x {config.threads} threads",
        f"payment {config.payment_delay_ms:g} ms",
        f"seed {config.seed}",
    ]
    if config.servers:
        how.append(f"{config.servers} app servers over HTTP")
    if config.payments == "external":
        how.append("external payment provider")
    return f"lastseat race: {s.name}, {shape}, " + ", ".join(how)


def naive_note(config: RaceConfig) -> str:
    """Why naive oversells, in the words of the scenario's inventory."""
    if config.scenario.name == "ga":
        return (
            "naive reads the pool's counter, then writes it back with no guard: concurrent "
            "buyers overwrite each other's counts, so the counter stays within capacity (its "
            "CHECK is satisfied) while more tickets are issued than the pool has units."
        )
    return (
        "naive ran without the schema's safety net (a unique index allowing one valid ticket "
        "per seat), so the race shows what an unguarded check-then-write does."
    )


def render_findings(results: Sequence[RaceResult], console: Console) -> None:
    """One line per strategy the checker failed: each broken rule and how often it fired."""
    for r in results:
        if r.verdict_ok:
            continue
        kinds = ", ".join(_findings(kind, n) for kind, n in r.violations.items())
        console.print(f"{r.strategy} [red]VIOLATED[/red]: {kinds}", highlight=False)


def _findings(kind: str, count: int) -> str:
    return f"{kind} ({_plural(count, 'finding')})"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _payments(result: RaceResult) -> PaymentsSummary:
    # Only results of a race with external payments reach the payments table.
    assert result.payments is not None
    return result.payments


def _provider_faults(result: RaceResult) -> str:
    p = result.payments
    faults = p.faults if p is not None else {}
    return ", ".join(f"{kind} {n:,}" for kind, n in sorted(faults.items())) or "none"


_PAYMENT_COLUMNS = (
    Result("faults injected", _provider_faults, "left"),
    Result("captures", lambda r: _count(_payments(r).captures)),
    Result("refunds", lambda r: _count(_payments(r).refunds)),
    Result("declined", lambda r: _count(_payments(r).declined)),
    Result("202 answers", lambda r: _count(_payments(r).pending_answers)),
    Result("unknown", lambda r: _count(_payments(r).unknown_outcomes)),
    Result("unknown resolved", lambda r: _count(_payments(r).unknown_resolved)),
    Result("resends", lambda r: _count(_payments(r).resends)),
    Result("replayed", lambda r: _count(_payments(r).replays)),
    Result("reconciled", lambda r: _count(_payments(r).reconciled)),
    Result("left unknown", lambda r: _alarm(_payments(r).unsettled_left)),
    Result("checker", verdict_text, "left"),
)


def render_payments(results: Sequence[RaceResult], console: Console) -> None:
    """What happened to the money: one row per strategy of a race with external payments."""
    paid = [r for r in results if r.payments is not None]
    console.print("payments through the external provider", style="bold")
    groups = [(column,) for column in _PAYMENT_COLUMNS]
    _print_stacked(console, stacked_tables(STRATEGY, groups, paid, console.width))


def to_json(results: Sequence[RaceResult]) -> str:
    """Every field of every result as JSON; throwaway files' paths are null."""
    return json.dumps([_result_json(r) for r in results], indent=2)


def _result_json(result: RaceResult) -> dict[str, Any]:
    raw = asdict(result)
    raw["violations"] = [{"kind": k, "count": n} for k, n in result.violations.items()]
    raw["db_path"] = result.db_path or None
    raw["history_path"] = result.history_path or None
    raw["attempts_per_s"] = result.attempts / result.elapsed_s if result.elapsed_s else 0.0
    return raw


def violations_json(violations: Sequence[Violation]) -> list[dict[str, Any]]:
    """A check's violations in `race --json`'s shape: kind and count, plus each finding."""
    grouped: dict[str, list[str]] = {}
    for v in violations:
        grouped.setdefault(v.kind, []).append(v.detail)
    return [
        {"kind": kind, "count": len(details), "details": details}
        for kind, details in grouped.items()
    ]
