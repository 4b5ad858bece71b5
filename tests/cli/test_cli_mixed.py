"""`lastseat race --scenario mixed` and the server-fault options, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LASTSEAT = [sys.executable, "-m", "lastseat"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LASTSEAT, *args], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


def test_a_short_mixed_race_reports_its_operations_and_every_rule_in_json() -> None:
    done = run(
        "race",
        "--scenario",
        "mixed",
        "--strategy",
        "atomic",
        "--buyers",
        "30",
        "--seats",
        "30",
        "--capacity",
        "30",
        "--processes",
        "2",
        "--threads",
        "4",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["scenario"] == "mixed" and row["verdict_ok"], row["violations"]
    assert {"buy", "hold", "read-availability"} <= set(row["operations"])
    assert row["faults"] == {}  # in-process: no servers to fault
    assert "cancel_not_refunded" in row["rules"] and "seat_sold_twice" in row["rules"]
    assert not any(row["rules"].values())


@pytest.mark.parametrize(
    "args",
    [
        ["race", "--scenario", "mixed", "--kill-every", "2"],
        ["race", "--scenario", "mixed", "--pause", "1"],
        ["race", "--scenario", "mixed", "--kill-every", "-1", "--servers", "2"],
        ["race", "--scenario", "mixed", "--pause", "soon", "--servers", "2"],
    ],
)
def test_server_faults_without_servers_or_with_bad_values_are_bad_input(
    tmp_path: Path, args: list[str]
) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lastseat: error: "), done.stderr
