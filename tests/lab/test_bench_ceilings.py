"""The bench's ceilings count what they committed, in real processes on real databases.

No test here asserts a speed: each checks that a ceiling's count is exactly what the database
shows was done, and that the load generator's CPU share is computed from what it measured.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.lab.ceilings import (
    HOT_ROW_TABLE,
    HOT_STOCK,
    SEAT_TABLE,
    postgres_ceiling,
    setup_postgres,
    sqlite_ceiling,
)
from lastseat.lab.cpu import ProcessCpu, process_cpu_s
from lastseat.lab.loadprocs import Measured, cores, summarize


def test_the_hot_row_ceiling_counts_each_committed_update(pg_server: ThrowawayPostgres) -> None:
    dsn = pg_server.create_database("bench_hot_row_count")
    setup_postgres(dsn, seats=10)

    ceiling = postgres_ceiling(dsn, "hot-row", connections=6, duration_s=0.3)

    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT available FROM {HOT_ROW_TABLE}").fetchone()
    assert row is not None
    assert ceiling.operations > 0
    assert ceiling.operations == HOT_STOCK - row[0]
    assert (ceiling.name, ceiling.connections, ceiling.servers) == ("hot-row", 6, 0)
    assert 0 < ceiling.p50_ms <= ceiling.p99_ms
    assert ceiling.load_cpu_share > 0


def test_the_skip_locked_ceiling_sells_each_seat_once_and_stops_when_none_is_left(
    pg_server: ThrowawayPostgres,
) -> None:
    dsn = pg_server.create_database("bench_skip_locked_sold_out")
    setup_postgres(dsn, seats=60)

    # Far longer than 60 claims take: the loops end because the seats are sold out.
    ceiling = postgres_ceiling(dsn, "skip-locked", connections=8, duration_s=120, seats=60)

    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FILTER (WHERE sold) FROM {SEAT_TABLE}").fetchone()
    assert row == (60,)
    assert ceiling.operations == 60
    assert ceiling.wall_s < 120


def test_the_sqlite_ceiling_counts_each_committed_update(tmp_path: Path) -> None:
    path = tmp_path / "ceiling.db"

    ceiling = sqlite_ceiling(path, duration_s=0.3)

    with sqlite3.connect(path) as conn:
        (available,) = conn.execute(f"SELECT available FROM {HOT_ROW_TABLE}").fetchone()
    assert ceiling.operations > 0
    assert ceiling.operations == HOT_STOCK - available
    assert (ceiling.name, ceiling.connections) == ("sqlite-hot-row", 1)


def test_the_load_cpu_share_is_process_cpu_over_wall_time_and_cores() -> None:
    measured = [
        Measured("a", 0, 2_000_000_000, cpu_s=1.0, ticks_at_start=(100, 400), ticks_at_end=(1, 1)),
        Measured("b", 1_000_000_000, 3_000_000_000, 0.5, (900, 900), ticks_at_end=(250, 700)),
    ]

    run = summarize(measured)

    assert run.values == ["a", "b"]
    assert run.wall_s == pytest.approx(3.0)
    assert run.cpu_s == pytest.approx(1.5)
    assert run.cpu_share == pytest.approx(1.5 / (3.0 * cores()))
    # The machine's busy ticks from the first start (a) to the last finish (b): 150 of 300.
    assert run.machine_share == pytest.approx(0.5)


def test_a_server_s_cpu_share_counts_its_cpu_time_over_the_window() -> None:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        watched = ProcessCpu([child.pid])
        while process_cpu_s(child.pid) < 0.3:  # polled until it has burnt some CPU
            time.sleep(0.01)
        share = watched.share(wall_s=1.0)
    finally:
        child.kill()
        child.wait()

    assert share > 0
    assert process_cpu_s(child.pid) == 0.0  # gone: nothing to count
