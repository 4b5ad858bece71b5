"""`lastseat bench` as a user runs it, with tiny settings: what it writes, not how fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LASTSEAT = [sys.executable, "-m", "lastseat"]
TINY = ("--buyers", "8", "--concurrency", "8", "--ceiling-s", "0.2", "--json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LASTSEAT, "bench", *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_the_postgres_bench_writes_its_ceilings_rows_and_ratios_as_json() -> None:
    done = run(*TINY, "--scenario", "ga", "--strategy", "atomic", "--servers", "2")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ceilings = {(c["name"], c["connections"], c["servers"]) for c in report["ceilings"]}
    assert ceilings == {
        ("hot-row", 8, 0),
        ("hot-row", 4, 0),
        ("skip-locked", 8, 0),
        ("http", 8, 2),
    }
    assert [(r["mode"], r["verdict_ok"], r["ok"]) for r in report["rows"]] == [
        ("direct", True, 8),
        ("http x2", True, 8),
    ]
    assert all(r["mean_batch"] is None for r in report["rows"])  # atomic reports no batches
    ratios = {r["name"]: r for r in report["ratios"]}
    assert set(ratios) == {
        "direct ÷ hot-row ceiling (8 conns)",
        "HTTP x2 ÷ direct",
        "peak RSS per server, MB (largest)",
        "best HTTP purchases/s (absolute)",
    }
    assert all(r["verdict"] in ("met", "not met") and r["target"] for r in ratios.values())


def test_the_sqlite_bench_sets_each_strategy_against_the_raw_update_loop() -> None:
    done = run(*TINY, "--db", "sqlite", "--scenario", "ga", "--strategy", "atomic,row-lock")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [c["name"] for c in report["ceilings"]] == ["sqlite-hot-row"]
    assert [(r["strategy"], r["mode"], r["verdict_ok"]) for r in report["rows"]] == [
        ("atomic", "direct", True),
        ("row-lock", "direct", True),
    ]
    assert [(r["name"], r["strategy"]) for r in report["ratios"]] == [
        ("direct ÷ SQLite raw loop", "atomic"),
        ("direct ÷ SQLite raw loop", "row-lock"),
    ]


def test_the_table_shows_the_ceilings_the_rows_and_the_ratios() -> None:
    done = run(*TINY[:-1], "--db", "sqlite", "--scenario", "ga", "--strategy", "atomic")

    assert done.returncode == 0, done.stderr
    for words in ("sqlite-hot-row", "load CPU", "batch mean/max", "direct ÷ SQLite raw loop"):
        assert words in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "mysql"],
        ["--servers", "0"],
        ["--servers", "1,x"],
        ["--servers", "9"],
        ["--concurrency", "2"],
        ["--ceiling-s", "0"],
        ["--buyers", "0"],
        ["--strategy", "bogus"],
        ["--strategy", "naive"],
        ["--scenario", "last-seat"],
    ],
)
def test_a_bad_option_value_exits_2_with_one_line(args: list[str]) -> None:
    done = run(*args)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("lastseat: error:")
