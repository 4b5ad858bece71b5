"""The race table as a newcomer's terminal shows it: nothing cut at 100 or 80 columns."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from rich.console import Console
from rich.table import Table

from lastseat.concurrency.registry import STRATEGY_NAMES
from lastseat.lab.checker.violations import KINDS, Violation
from lastseat.lab.report import (
    DEFAULT_GROUPS,
    EXTRA,
    naive_note,
    race_title,
    render_payments,
    render_table,
    to_json,
    violations_json,
)
from lastseat.lab.runner import PaymentsSummary, RaceConfig, RaceResult
from lastseat.lab.scenarios import Scenario, default_scenario

ELLIPSIS = "…"
TITLE = "lastseat race: rush, 10,000 seats (hot-seat skew 2), 20,000 buyers"


def result(strategy: str, **changes: object) -> RaceResult:
    """A row with the widest numbers a README race produces (rush, 20,000 buyers)."""
    row = RaceResult(
        strategy=strategy,
        scenario="rush",
        buyers=20_000,
        processes=4,
        attempts=20_000,
        ok=9_958,
        rejected=10_031,
        errors=11,
        tickets_sold=9_958,
        oversold=0,
        double_charges=0,
        retries=12_345,
        conflicts=23_456,
        lock_waits=18_765,
        lock_wait_ms=123_456.78,
        lock_held_ms=98_765.43,
        elapsed_s=41.5,
        purchases_per_s=239.9,
        p50_ms=1_234.56,
        p99_ms=12_345.67,
        verdict_ok=True,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def every_strategy() -> list[RaceResult]:
    rows = [result(name) for name in STRATEGY_NAMES]
    rows[0] = replace(
        rows[0],
        oversold=4_242,
        double_charges=17,
        verdict_ok=False,
        violations=dict.fromkeys(KINDS, 8484),  # every rule, the longest names included
    )
    return rows


def render_race(width: int, results: Sequence[RaceResult], *, wide: bool = False) -> str:
    out = io.StringIO()
    console = Console(width=width, file=out, color_system=None, force_terminal=False)
    render_table(results, console, TITLE, wide=wide)
    return out.getvalue()


def cut_or_overflowing(text: str, width: int) -> list[str]:
    """Lines where rich cut a word, or wider than the terminal."""
    return [line for line in text.splitlines() if ELLIPSIS in line or len(line.rstrip()) > width]


def row_cells(text: str, strategy: str) -> set[str]:
    """Every word of the strategy's rows (wrapped lines included) across the stacked tables."""
    cells: set[str] = set()
    in_row = False
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == strategy:
            in_row = True
        elif not (in_row and words and line.startswith("  ")):  # a wrapped cell's next line
            in_row = False
        if in_row:
            cells.update(words[1:] if words[0] == strategy else words)
    return cells


def headers(text: str) -> set[str]:
    """Every word of every table's header: the lines above its rule, up to a blank or a title."""
    lines = text.splitlines()
    found: set[str] = set()
    for i, line in enumerate(lines):
        if not line.startswith("──"):
            continue
        j = i - 1
        while j >= 0 and lines[j].strip() and not lines[j].startswith(TITLE[:14]):
            found.update(lines[j].split())
            j -= 1
    return found


@pytest.mark.parametrize("width", [100, 80])
def test_every_header_cell_and_verdict_is_whole_at_ordinary_terminal_widths(width: int) -> None:
    results = every_strategy()
    text = render_race(width, results)
    assert cut_or_overflowing(text, width) == []
    for column in (c for group in DEFAULT_GROUPS for c in group if c.is_shown(results)):
        for word in column.header.split():
            assert word in headers(text), (column.header, text)
    for r in results:
        cells = row_cells(text, r.strategy)
        expected = {"9,958", "20,000", "10,031", "12,345", "18,765", "482", "1,234.56", "12,345.67"}
        assert expected <= cells, (r.strategy, cells)
        assert ("VIOLATED" if r.strategy == "naive" else "OK") in cells
    assert {"4,242", "17"} <= row_cells(text, "naive")
    for kind in KINDS:  # each broken rule is named in full, with its count
        assert f"{kind} (8,484 findings)" in " ".join(text.split()), kind


def test_the_check_for_cut_cells_catches_one_wide_table() -> None:
    # Control: the table as it was (every column in one rich table) is cut at 100 columns.
    console = Console(width=100, file=io.StringIO(), color_system=None)
    table = Table()
    columns = [c for group in DEFAULT_GROUPS for c in group if c.is_shown(every_strategy())]
    for column in columns:
        table.add_column(column.header)
    for r in every_strategy():
        table.add_row(*(c.cell(r) for c in columns))
    console.print(table)
    assert cut_or_overflowing(console.file.getvalue(), 100)  # type: ignore[attr-defined]


def test_a_wide_terminal_gets_one_table_and_a_narrow_one_stacked_tables() -> None:
    results = every_strategy()
    tables = {width: render_race(width, results).count(" strategy ") for width in (250, 100, 80)}
    assert tables[250] == 1
    assert 1 < tables[100] <= tables[80]


def test_a_scenario_with_operations_and_server_faults_shows_both_columns() -> None:
    mixed = {"buy": 50_000, "hold": 40_000, "pay-hold": 30_000, "release": 3_456}
    faults = {"kills": 12.0, "restarts": 12.0, "restart_failures": 0.0, "pauses": 1.0}
    faults["paused_s"] = 5.004
    results = [replace(r, operations=mixed, faults=faults) for r in every_strategy()]
    for width in (100, 80):
        text = render_race(width, results)
        assert cut_or_overflowing(text, width) == []
        assert {"ops", "server", "faults"} <= headers(text)
        for r in results:
            cells = row_cells(text, r.strategy)
            assert {"123,456", "kills", "12,", "restarts", "pauses", "1", "(5.0", "s)"} <= cells
            assert "failures" not in cells  # none happened
    assert "ops" not in headers(render_race(100, every_strategy()))
    buys_only = [replace(r, operations={"buy": 20_000}) for r in every_strategy()]
    assert "ops" not in headers(render_race(100, buys_only))  # the attempts column says it


def test_wide_lists_every_checker_rule_with_its_findings() -> None:
    rules = dict.fromkeys(KINDS, 0)
    results = [replace(r, rules=rules) for r in every_strategy()]
    results[0] = replace(results[0], rules={**rules, "seat_sold_twice": 2})
    for width in (100, 80):
        text = render_race(width, results, wide=True)
        rule_words = " ".join(text[text.index("findings of each checker rule") :].split())
        assert ELLIPSIS not in rule_words
        for kind in KINDS:
            assert all(word in rule_words for word in kind.split("_")), kind
    assert "2" in row_cells(text[text.index("findings of each checker rule") :], "naive")


def test_wide_shows_every_column_in_one_table_without_cutting() -> None:
    text = render_race(80, every_strategy(), wide=True)
    assert ELLIPSIS not in text
    assert text.count(" strategy ") == 1
    for column in (c for group in (*DEFAULT_GROUPS, EXTRA) for c in group if c.shown is None):
        for word in column.header.split():
            assert word in headers(text), column.header


def test_the_rate_of_a_last_seat_race_is_not_rounded_to_zero() -> None:
    one_sale = result("atomic", attempts=1, ok=1, elapsed_s=2.0)
    text = render_race(250, [one_sale], wide=True)
    assert {"0.5"} <= row_cells(text, "atomic")  # attempts /s and ok /s, one decimal below 10


def test_the_payments_table_fits_too() -> None:
    paid = PaymentsSummary(
        faults={"capture_timeout": 1_234, "outage": 5_678, "slow": 9_012},
        captures=19_000,
        refunds=1_000,
        declined=950,
        pending_answers=1_234,
        unknown_outcomes=1_300,
        unknown_resolved=1_300,
        resends=2_000,
        replays=2_000,
        reconciled=66,
        unsettled_left=0,
    )
    results = [replace(r, payments=paid) for r in every_strategy()]
    for width in (100, 80):
        console = Console(width=width, file=io.StringIO(), color_system=None)
        render_payments(results, console)
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert cut_or_overflowing(text, width) == []
        assert {"19,000", "capture_timeout", "1,234,", "outage"} <= row_cells(text, "naive")


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        (default_scenario("last-seat"), ["1 seat,", "500 buyers"]),
        (default_scenario("rush"), ["1,000 seats", "skew 2", "2,000 buyers"]),
        (Scenario("group", buyers=500, seats=100, group_size=3), ["100 seats", "groups of 3"]),
        (default_scenario("ga"), ["a pool of 1,000 units", "1-4 per buyer"]),
    ],
)
def test_the_title_says_what_inventory_was_raced(scenario: Scenario, words: list[str]) -> None:
    title = race_title(RaceConfig(scenario, servers=3))
    for word in [*words, "4 processes x 8 threads", "seed 1", "3 app servers"]:
        assert word in title, title


def test_the_naive_note_for_a_pool_does_not_speak_of_seats() -> None:
    assert "seat" not in naive_note(RaceConfig(default_scenario("ga")))
    assert "one valid ticket per seat" in naive_note(RaceConfig(default_scenario("rush")))


def test_race_json_and_check_json_write_violations_in_one_shape() -> None:
    broken = replace(
        every_strategy()[0],
        violations={"seat_sold_twice": 2, "double_charge": 1},
        db_path="",
        history_path="kept.jsonl",
    )
    (row,) = json.loads(to_json([broken]))
    assert row["violations"] == [
        {"kind": "seat_sold_twice", "count": 2},
        {"kind": "double_charge", "count": 1},
    ]
    assert row["db_path"] is None and row["history_path"] == "kept.jsonl"
    assert row["attempts_per_s"] == pytest.approx(20_000 / 41.5)
    checked = violations_json(
        [
            Violation("seat_sold_twice", "seat s1 has valid tickets t1, t2"),
            Violation("seat_sold_twice", "seat s1 is claimed by live holds h1, h2"),
            Violation("double_charge", "order o1 has purchase transfers x1, x2"),
        ]
    )
    assert [{"kind": v["kind"], "count": v["count"]} for v in checked] == row["violations"]
    assert checked[0]["details"][1] == "seat s1 is claimed by live holds h1, h2"
    assert json.loads(to_json([every_strategy()[1]]))[0]["violations"] == []
