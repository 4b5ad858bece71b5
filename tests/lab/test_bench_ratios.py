"""The bench's ratios: each one issue 9 names, from the right rows, with its target's verdict."""

from __future__ import annotations

from dataclasses import replace

from lastseat.lab.bench_ratios import postgres_ratios, sqlite_ratios
from lastseat.lab.bench_rows import StrategyRow
from lastseat.lab.ceilings import Ceiling


def ceiling(name: str, per_s: float, connections: int = 64, servers: int = 0) -> Ceiling:
    return Ceiling(name, connections, servers, per_s, 1.0, 2.0, 100, 0.05, 1.0)


def row(scenario: str, strategy: str, mode: str, per_s: float, rss: float = 0.0) -> StrategyRow:
    servers = int(mode.removeprefix("http x")) if mode != "direct" else 0
    return StrategyRow(
        scenario, strategy, mode, servers, per_s, 1.0, 2.0, 10, 10, 0, 0, 0, 0, 0, 0, 0, 0,
        rss, None if mode == "direct" else 0.05, True, {},
    )  # fmt: skip


CEILINGS = [
    ceiling("hot-row", 2_000),
    ceiling("hot-row", 7_000, connections=4),
    ceiling("skip-locked", 10_000),
    ceiling("http", 5_000, servers=1),
    ceiling("http", 8_000, servers=2),
]


def by_name(rows: list[StrategyRow]) -> dict[tuple[str, str, str], tuple[float, str, str]]:
    found = postgres_ratios(CEILINGS, rows, concurrency=64)
    return {
        (r.name, r.scenario, r.strategy): (round(r.value, 3), r.target, r.verdict) for r in found
    }


def test_one_sale_per_transaction_is_held_to_the_hot_row_ceiling_and_to_its_direct_rate() -> None:
    rows = [
        row("ga", "atomic", "direct", 1_400),
        row("ga", "atomic", "http x1", 1_000, rss=90),
        row("ga", "atomic", "http x2", 1_050, rss=120),
    ]

    found = by_name(rows)

    assert found[("direct ÷ hot-row ceiling (64 conns)", "ga", "atomic")] == (0.7, ">= 0.6", "met")
    assert found[("HTTP x2 ÷ direct", "ga", "atomic")] == (0.75, ">= 0.8", "not met")
    assert found[("peak RSS per server, MB (largest)", "ga", "atomic")] == (120, "< 150", "met")
    assert found[("best HTTP purchases/s (absolute)", "ga", "atomic")] == (1_050, ">= 1000", "met")


def test_batched_is_held_to_three_times_the_hot_row_and_half_the_http_ceiling() -> None:
    rows = [
        row("ga", "batched", "direct", 5_000),
        row("ga", "batched", "http x2", 3_000, rss=100),
    ]

    found = by_name(rows)

    assert found[("direct ÷ hot-row ceiling (64 conns)", "ga", "batched")] == (
        2.5,
        ">= 3",
        "not met",
    )
    assert found[("HTTP x2 ÷ HTTP ceiling x2", "ga", "batched")] == (0.375, ">= 0.5", "not met")
    assert ("HTTP x2 ÷ direct", "ga", "batched") not in found


def test_the_rush_ratio_takes_the_best_strategy_over_two_servers() -> None:
    rows = [
        row("rush", "atomic", "direct", 900),
        row("rush", "atomic", "http x2", 800),
        row("rush", "row-lock-skip-locked", "direct", 1_000),
        row("rush", "row-lock-skip-locked", "http x2", 7_500),
    ]

    found = by_name(rows)

    assert found[("best HTTP x2 ÷ SKIP LOCKED ceiling", "rush", "row-lock-skip-locked")] == (
        0.75,
        ">= 0.7",
        "met",
    )
    assert ("direct ÷ hot-row ceiling (64 conns)", "rush", "atomic") not in found


def test_a_ratio_whose_rows_were_not_measured_is_left_out() -> None:
    found = by_name([row("ga", "atomic", "direct", 1_000)])

    assert set(found) == {("direct ÷ hot-row ceiling (64 conns)", "ga", "atomic")}


def test_sqlite_rows_are_divided_by_the_raw_loop_without_a_target() -> None:
    rows = [row("ga", "atomic", "direct", 500), row("ga", "row-lock", "direct", 250)]
    raw = [replace(ceiling("sqlite-hot-row", 1_000), connections=1)]

    found = sqlite_ratios(raw, rows)

    assert [(r.strategy, r.value, r.target, r.verdict) for r in found] == [
        ("atomic", 0.5, "", "-"),
        ("row-lock", 0.25, "", "-"),
    ]
