"""The `lastseat` command as a user runs it: a real subprocess, its output and exit code."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lastseat.cli.race import parse_strategies
from lastseat.concurrency.registry import GUARDED_NAMES, LOCK_SERVICE_NAMES, STRATEGY_NAMES

LASTSEAT = [sys.executable, "-m", "lastseat"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LASTSEAT, *args], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


def test_the_default_race_shows_naive_overselling_and_every_guarded_strategy_correct() -> None:
    done = run("race", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["strategy"]: row for row in json.loads(done.stdout)}
    assert list(rows) == [n for n in STRATEGY_NAMES if n not in LOCK_SERVICE_NAMES]
    assert all(row["attempts"] == 500 for row in rows.values())
    assert rows["naive"]["oversold"] > 0
    assert not rows["naive"]["verdict_ok"]
    for name in (n for n in GUARDED_NAMES if n not in LOCK_SERVICE_NAMES):
        assert rows[name]["oversold"] == 0
        assert rows[name]["tickets_sold"] == 1
        assert rows[name]["verdict_ok"], rows[name]["violations"]


def test_the_race_table_names_each_strategy_and_the_checker_verdict() -> None:
    done = run("race", "--buyers", "60", "--processes", "2", "--threads", "4")
    assert done.returncode == 0, done.stderr
    for word in ("naive", "atomic", "row-lock", "optimistic", "VIOLATED", "OK"):
        assert word in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["race", "--strategy", "bogus"],
        ["race", "--buyers", "-5"],
        ["race", "--buyers", "0"],
        ["race", "--processes", "0"],
        ["race", "--scenario", "nope"],
        ["race", "--db", "/nonexistent-dir/x.db", "--strategy", "atomic"],
        ["race", "--db", "kept.db"],  # naive on a kept database needs --allow-unsafe
        ["availability", "ev", "--db", "/nonexistent-dir/x.db"],
        ["availability", "ev", "--db", "missing.db"],
        ["check", "missing.jsonl"],
        ["event", "create", "ev", "--name", "Show", "--seats", "A:ten-rows"],
        ["event", "create", "bad/id", "--name", "Show", "--seats", "A:1x1@100"],
        ["buy", "alice", "ev", "--seat", "ev/A/0001/0001", "--strategy", "naive"],
        ["wallet", "top-up", "alice", "-3"],
        ["no-such-command"],
    ],
)
def test_bad_input_gets_one_line_and_exit_code_two(tmp_path: Path, args: list[str]) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lastseat: error: "), done.stderr
    assert "Traceback" not in done.stderr


def test_a_garbage_history_file_is_bad_input(tmp_path: Path) -> None:
    history = tmp_path / "run.jsonl"
    history.write_text("this is not json\n")
    done = run("check", str(history), "--db", str(tmp_path / "run.db"))
    assert done.returncode == 2
    assert done.stderr.startswith("lastseat: error: ")


def test_a_database_from_a_newer_lastseat_is_refused_with_exit_two(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run("wallet", "create", "alice", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_meta SET value = '99' WHERE key = 'version'")
    done = run("wallet", "balance", "alice", "--db", str(db))
    assert done.returncode == 2
    assert "newer than this lastseat" in done.stderr


def test_a_saved_race_rechecks_ok_and_a_tampered_one_does_not(tmp_path: Path) -> None:
    db, history = tmp_path / "run.db", tmp_path / "run.jsonl"
    done = run(
        "race", "--strategy", "atomic", "--buyers", "50", "--db", str(db), "--history", str(history)
    )
    assert done.returncode == 0, done.stderr
    assert run("check", str(history)).returncode == 0
    with sqlite3.connect(db) as conn:  # forge a second ticket for the sold seat
        conn.execute("DROP INDEX one_valid_ticket_per_seat")  # the schema would refuse it
        conn.execute(
            "INSERT INTO tickets SELECT ticket_id || 'x', order_id, event_id, seat_id,"
            " pool_id, code || 'x', status FROM tickets"
        )
    rechecked = run("check", str(history), "--json")
    assert rechecked.returncode == 1
    assert "seat_sold_twice" in {v["kind"] for v in json.loads(rechecked.stdout)["violations"]}


def test_set_up_an_event_and_wallets_then_buy_and_inspect_availability(tmp_path: Path) -> None:
    db = str(tmp_path / "shop.db")
    assert (
        run(
            "event",
            "create",
            "gig",
            "--name",
            "Gig",
            "--seats",
            "A:2x5@5000",
            "--pool",
            "standing:100@2500",
            "--db",
            db,
        ).returncode
        == 0
    )
    assert run("wallet", "create", "alice", "--top-up", "20000", "--db", db).returncode == 0
    bought = run(
        "buy", "alice", "gig", "--seat", "gig/A/0001/0001", "--seat", "gig/A/0001/0002", "--db", db
    )
    assert bought.returncode == 0, bought.stderr
    assert "confirmed" in bought.stdout
    again = run("buy", "alice", "gig", "--seat", "gig/A/0001/0002", "--db", db)
    assert again.returncode == 1 and "not all available" in again.stderr
    poor = run("buy", "alice", "gig", "--pool", "standing", "--quantity", "5", "--db", db)
    assert poor.returncode == 1 and "holds less" in poor.stderr
    shown = run("availability", "gig", "--db", db)
    assert "section A: 8 of 10 seats available" in shown.stdout
    assert "pool standing: 100 of 100 available" in shown.stdout
    assert "100.00 EUR" in run("wallet", "balance", "alice", "--db", db).stdout


def test_all_with_named_strategies_adds_them_in_table_order() -> None:
    every = parse_strategies(("all,zk-lock",))
    assert every[-1] == "zk-lock"
    assert every == [n for n in STRATEGY_NAMES if n not in LOCK_SERVICE_NAMES or n == "zk-lock"]
    assert "zk-lock" not in parse_strategies(("all",))
