"""The race comparison table (rich) and its JSON twin for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from lastseat.lab.runner import RaceResult

_COLUMNS = (
    ("strategy", "left"),
    ("tickets", "right"),
    ("oversold", "right"),
    ("double charged", "right"),
    ("attempts", "right"),
    ("ok", "right"),
    ("rejected", "right"),
    ("errors", "right"),
    ("retries", "right"),
    ("lock waits", "right"),
    ("attempts/s", "right"),
    ("buys/s", "right"),
    ("p50 ms", "right"),
    ("p99 ms", "right"),
    ("checker", "left"),
)


def render_table(results: Sequence[RaceResult], console: Console, title: str) -> None:
    """Print one row per strategy."""
    table = Table(title=title, title_justify="left")
    for header, justify in _COLUMNS:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.strategy,
            str(r.tickets_sold),
            _alarm(r.oversold),
            _alarm(r.double_charges),
            str(r.attempts),
            str(r.ok),
            str(r.rejected),
            str(r.errors),
            str(r.retries),
            str(r.lock_waits),
            f"{r.attempts / r.elapsed_s:,.0f}",
            f"{r.purchases_per_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            verdict_text(r),
        )
    console.print(table)


_PAYMENT_COLUMNS = (
    "strategy",
    "faults injected",
    "captures",
    "refunds",
    "declined",
    "202 answers",
    "unknown",
    "unknown resolved",
    "resends",
    "replayed",
    "reconciled",
    "left unknown",
    "checker",
)


def render_payments(results: Sequence[RaceResult], console: Console) -> None:
    """What happened to the money: one row per strategy of a race with external payments."""
    table = Table(title="payments through the external provider", title_justify="left")
    for header in _PAYMENT_COLUMNS:
        table.add_column(header, justify="left" if header in ("strategy", "checker") else "right")
    for r in results:
        p = r.payments
        if p is None:
            continue
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(p.faults.items())) or "none"
        table.add_row(
            r.strategy,
            faults,
            str(p.captures),
            str(p.refunds),
            str(p.declined),
            str(p.pending_answers),
            str(p.unknown_outcomes),
            str(p.unknown_resolved),
            str(p.resends),
            str(p.replays),
            str(p.reconciled),
            _alarm(p.unsettled_left),
            verdict_text(r),
        )
    console.print(table)


def verdict_text(result: RaceResult) -> str:
    """`OK`, or the violated invariants with counts."""
    if result.verdict_ok:
        return "[green]OK[/green]"
    kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(result.violations.items()))
    return f"[red]VIOLATED[/red] {kinds}"


def to_json(results: Sequence[RaceResult]) -> str:
    """The same summary as JSON."""
    return json.dumps([asdict(r) for r in results], indent=2)


def _alarm(count: int) -> str:
    return f"[bold red]{count}[/bold red]" if count else "0"
