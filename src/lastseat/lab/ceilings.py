"""The ceilings a sale is measured against, on the bench's own database server, in the same run.

- hot row: one conditional `UPDATE` of one counter per transaction (autocommit: statement +
  durable commit), driven through psycopg - the most a one-sale-per-transaction strategy can
  commit on one hot row, since each commit waits for its WAL flush while holding the row lock;
- SKIP LOCKED: one statement per transaction that claims a free seat nobody is locking,
  starting at a random seat - the most an assigned-seat rush can commit;
- SQLite: one process, one connection, `BEGIN IMMEDIATE` + the conditional `UPDATE` + `COMMIT`
  (SQLite has one writer at a time, so one process is its best case).

Each runs for a fixed time after every load process passed one barrier (lab.loadprocs), and
reports transactions per second, p50 / p99 per transaction and the load processes' CPU share.
"""

from __future__ import annotations

import random
import sqlite3
import statistics as stats
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lastseat.lab.loadprocs import LoadRun, run_load

HOT_ROW_TABLE = "bench_hot_counter"
SEAT_TABLE = "bench_seats"
HOT_STOCK = 10**15
SEATS_PER_SECOND_BOUND = 40_000  # seats to lay out per second of SKIP LOCKED run
HOT_UPDATE = f"UPDATE {HOT_ROW_TABLE} SET available = available - 1 WHERE id = 1 AND available > 0"
SKIP_LOCKED_CLAIM = (
    f"UPDATE {SEAT_TABLE} SET sold = true WHERE seat_id = ("
    f" SELECT seat_id FROM {SEAT_TABLE} WHERE NOT sold AND seat_id >= %s"
    " ORDER BY seat_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
)
MAX_PROCESSES = 4


@dataclass(frozen=True, slots=True)
class Ceiling:
    """One measured ceiling."""

    name: str  # hot-row | skip-locked | http | sqlite-hot-row
    connections: int
    servers: int
    per_s: float
    p50_ms: float
    p99_ms: float
    operations: int
    load_cpu_share: float
    wall_s: float
    machine_cpu_share: float | None = None  # every core's busy share, whoever used it
    server_cpu_share: float | None = None  # the app servers' share (HTTP only)


@dataclass(frozen=True, slots=True)
class Timed:
    """What one load process counted."""

    operations: int
    latencies_ns: list[int]


@dataclass(frozen=True, slots=True)
class PostgresJob:
    """One load process of a PostgreSQL ceiling (picklable)."""

    dsn: str
    threads: int
    duration_s: float
    kind: str  # hot-row | skip-locked
    seats: int = 0
    seed: int = 1


def setup_postgres(dsn: str, seats: int) -> None:
    """Create the hot counter (one row) and `seats` free seats in the database at `dsn`."""
    import psycopg  # noqa: PLC0415 - the driver loads only for a PostgreSQL bench

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {HOT_ROW_TABLE}, {SEAT_TABLE}")
        conn.execute(
            f"CREATE TABLE {HOT_ROW_TABLE} (id integer PRIMARY KEY,"
            " available bigint NOT NULL CHECK (available >= 0))"
        )
        conn.execute(f"INSERT INTO {HOT_ROW_TABLE} VALUES (1, {HOT_STOCK})")
        conn.execute(
            f"CREATE TABLE {SEAT_TABLE} (seat_id integer PRIMARY KEY,"
            " sold boolean NOT NULL DEFAULT false)"
        )
        conn.execute(f"INSERT INTO {SEAT_TABLE} (seat_id) SELECT generate_series(1, %s)", (seats,))
        conn.execute(f"CREATE INDEX ON {SEAT_TABLE} (seat_id) WHERE NOT sold")
        conn.execute(f"VACUUM ANALYZE {SEAT_TABLE}")


def postgres_ceiling(
    dsn: str, kind: str, connections: int, duration_s: float, seats: int = 0
) -> Ceiling:
    """Drive `kind` (hot-row | skip-locked) over `connections` connections for `duration_s`."""
    processes = min(MAX_PROCESSES, connections)
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    jobs = [PostgresJob(dsn, n, duration_s, kind, seats, seed) for seed, n in enumerate(shares)]
    return ceiling_of(kind, connections, 0, run_load(postgres_work, jobs))


def postgres_work(job: PostgresJob) -> Callable[[], Timed]:
    """Set up one load process's connections; the returned call runs its threads' loops."""
    import psycopg  # noqa: PLC0415

    conns = [
        psycopg.connect(job.dsn, autocommit=True, prepare_threshold=0) for _ in range(job.threads)
    ]

    def go() -> Timed:
        deadline = time.monotonic() + job.duration_s
        counts = [0] * len(conns)
        latencies: list[list[int]] = [[] for _ in conns]

        def loop(index: int) -> None:
            rng = random.Random(job.seed * 1_000 + index)
            cursor = conns[index].cursor()
            done, timed = 0, latencies[index]
            while time.monotonic() < deadline:
                started = time.monotonic_ns()
                if job.kind == "hot-row":
                    cursor.execute(HOT_UPDATE)
                else:
                    cursor.execute(SKIP_LOCKED_CLAIM, (rng.randint(1, job.seats),))
                    if cursor.rowcount == 0:  # nothing free above the start: from the bottom
                        cursor.execute(SKIP_LOCKED_CLAIM, (1,))
                if cursor.rowcount != 1:
                    break  # sold out: the count so far stands
                timed.append(time.monotonic_ns() - started)
                done += 1
            counts[index] = done

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(conns))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for conn in conns:
            conn.close()
        return Timed(sum(counts), [n for part in latencies for n in part])

    return go


@dataclass(frozen=True, slots=True)
class SqliteJob:
    """The SQLite ceiling's one load process (picklable)."""

    path: str
    duration_s: float
    synchronous: str


def sqlite_ceiling(path: Path, duration_s: float, synchronous: str = "FULL") -> Ceiling:
    """One process, one connection, one conditional UPDATE per write transaction."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            f"CREATE TABLE {HOT_ROW_TABLE} (id integer PRIMARY KEY,"
            " available integer NOT NULL CHECK (available >= 0))"
        )
        conn.execute(f"INSERT INTO {HOT_ROW_TABLE} VALUES (1, {HOT_STOCK})")
    conn.close()
    run = run_load(sqlite_work, [SqliteJob(str(path), duration_s, synchronous)])
    return ceiling_of("sqlite-hot-row", 1, 0, run)


def sqlite_work(job: SqliteJob) -> Callable[[], Timed]:
    """The raw loop: BEGIN IMMEDIATE, UPDATE, COMMIT, as the SQLite store writes."""
    conn = sqlite3.connect(job.path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={job.synchronous}")

    def go() -> Timed:
        deadline = time.monotonic() + job.duration_s
        latencies: list[int] = []
        while time.monotonic() < deadline:
            started = time.monotonic_ns()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(HOT_UPDATE)
            conn.execute("COMMIT")
            latencies.append(time.monotonic_ns() - started)
        conn.close()
        return Timed(len(latencies), latencies)

    return go


def ceiling_of(name: str, connections: int, servers: int, run: LoadRun[Timed]) -> Ceiling:
    """A ceiling from what its load processes counted."""
    latencies = sorted(n for part in run.values for n in part.latencies_ns)
    operations = sum(part.operations for part in run.values)
    return Ceiling(
        name=name,
        connections=connections,
        servers=servers,
        per_s=operations / run.wall_s,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        operations=operations,
        load_cpu_share=run.cpu_share,
        wall_s=run.wall_s,
        machine_cpu_share=run.machine_share,
    )


def percentile_ms(sorted_ns: list[int], pct: int) -> float:
    """The `pct`-th percentile of sorted nanosecond durations, in ms (0 for none)."""
    if not sorted_ns:
        return 0.0
    if len(sorted_ns) == 1:
        return sorted_ns[0] / 1e6
    return stats.quantiles(sorted_ns, n=100, method="inclusive")[pct - 1] / 1e6
