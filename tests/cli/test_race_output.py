"""What `lastseat race` and `lastseat check` print: a table that fits, paths that exist, counts
that say what they count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lastseat.concurrency.registry import LOCK_SERVICE_NAMES, STRATEGY_NAMES

LASTSEAT = [sys.executable, "-m", "lastseat"]
SMALL = ("--buyers", "30", "--processes", "2", "--threads", "2")


def run(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [*LASTSEAT, *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


def test_the_default_race_table_fits_an_80_column_terminal_uncut() -> None:
    done = run("race", *SMALL, columns=80)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if "…" in line or len(line.rstrip()) > 80] == []
    first_words = {line.split()[0] for line in lines if line.split()}
    assert {n for n in STRATEGY_NAMES if n not in LOCK_SERVICE_NAMES} <= first_words
    assert "naive VIOLATED: seat_sold_twice" in done.stdout
    assert "1 seat, 30 buyers" in done.stdout


def test_race_help_prints_a_single_percent_sign() -> None:
    done = run("race", "--help")
    assert done.returncode == 0, done.stderr
    assert "20% of buyers" in " ".join(done.stdout.split())
    assert "%%" not in done.stdout


def test_race_json_names_no_file_that_was_thrown_away(tmp_path: Path) -> None:
    throwaway = run("race", "--strategy", "atomic", *SMALL, "--json")
    assert throwaway.returncode == 0, throwaway.stderr
    (row,) = json.loads(throwaway.stdout)
    assert row["db_path"] is None and row["history_path"] is None
    assert row["violations"] == []

    history = tmp_path / "kept.jsonl"
    only_history = run("race", "--strategy", "atomic", *SMALL, "--history", str(history), "--json")
    assert only_history.returncode == 0, only_history.stderr
    (row,) = json.loads(only_history.stdout)
    assert row["db_path"] is None
    assert row["history_path"] == str(history) and history.is_file()


def test_a_kept_race_names_its_files_and_check_counts_attempts(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    done = run("race", "--strategy", "atomic", *SMALL, "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["db_path"] == str(db) and db.is_file()
    assert Path(row["history_path"]).is_file()

    checked = run("check", row["history_path"])
    assert checked.returncode == 0, checked.stderr
    assert "30 attempts (60 history records" in checked.stdout
    as_json = json.loads(run("check", row["history_path"], "--json").stdout)
    assert (as_json["attempts"], as_json["history_records"]) == (30, 60)
    assert as_json["violations"] == row["violations"] == []
