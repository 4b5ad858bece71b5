"""The SQLite store: one file in WAL mode, explicit transactions, measured write-lock waits.

The driver runs in autocommit mode (`isolation_level=None`) and every transaction is begun by
hand, because Python's implicit transaction handling would run a check-SELECT before its
BEGIN, outside the transaction it is meant to guard.

SQLite has one writer at a time. A write transaction starts with BEGIN IMMEDIATE, which takes
the database-wide write lock *before* the first read, so this interleaving cannot happen::

    A: BEGIN; SELECT status -> available
    B: BEGIN; SELECT status -> available
    A: UPDATE -> sold; COMMIT
    B: UPDATE -> sold; COMMIT          # sold twice

Threads of one process queue on an in-process mutex first, so only one connection per process
competes for SQLite's lock (SQLite's busy handler polls; many pollers starve each other).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lastseat.adapters.sqlite import schema
from lastseat.adapters.sqlite.errors import is_busy, translate, translated
from lastseat.adapters.sqlite.snapshot import read_snapshot
from lastseat.adapters.sqlite.tx import SqliteTx
from lastseat.domain.errors import StoreBusyError, StoreError
from lastseat.service.ports import InventoryTx, Isolation, ReadTx
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_FIRST_POLL_S = 0.000_05
_LAST_POLL_S = 0.001


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    """Connection settings; FULL sync makes each commit durable across power loss."""

    busy_timeout_ms: int = 30_000
    synchronous: str = "FULL"
    safety_nets: bool = True
    create: bool = True


class SqliteStore:
    """A SQLite database file; one instance per process, one connection per thread."""

    def __init__(self, path: str | Path, options: SqliteOptions | None = None) -> None:
        self.options = options or SqliteOptions()
        if self.options.synchronous not in SYNCHRONOUS_MODES:
            raise StoreError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        self.path = str(path)
        if not self.options.create and not Path(self.path).is_file():
            raise StoreError(f"no database at {self.path}")
        self._local = threading.local()
        self._writer = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        conn = self._connection()
        try:
            with translated():
                conn.execute("PRAGMA journal_mode = WAL")
                schema.migrate(conn, safety_nets=self.options.safety_nets)
                self.safety_nets = schema.safety_nets_enabled(conn)
        except BaseException:
            self.close()
            raise

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """A read-only transaction: one consistent snapshot, never blocks writers (WAL)."""
        conn = self._connection()
        with translated():
            conn.execute("BEGIN")
            try:
                yield SqliteTx(conn)
            finally:
                _rollback(conn)  # nothing was written: ending the read is all that is left

    @contextmanager
    def write(
        self,
        stats: StrategyStatistics | None = None,
        *,
        isolation: Isolation = Isolation.READ_COMMITTED,
        durable: bool = True,
    ) -> Iterator[InventoryTx]:
        """A write transaction holding the database lock; commits only if the block succeeds.

        `isolation` is accepted and ignored: one writer at a time under BEGIN IMMEDIATE is
        already serializable, whatever level is asked for. So is `durable`: the connection's
        `synchronous` mode decides for every commit.
        """
        stats = stats or StrategyStatistics()
        conn = self._connection()
        timeout_s = self.options.busy_timeout_ms / 1000
        waited_ns = 0
        if not self._writer.acquire(blocking=False):
            started = time.monotonic_ns()
            if not self._writer.acquire(timeout=timeout_s):
                raise StoreBusyError("another thread held the write lock past the busy timeout")
            waited_ns = time.monotonic_ns() - started
        try:
            waited_ns += self._begin_immediate(conn)
            if waited_ns:
                stats.add(lock_waits=1, lock_wait_ns=waited_ns)
            locked_at = time.monotonic_ns()
            try:
                yield SqliteTx(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate(exc) from exc
            except BaseException:
                _rollback(conn)
                raise
            finally:
                stats.add(lock_held_ns=time.monotonic_ns() - locked_at)
        finally:
            self._writer.release()

    def snapshot(self) -> Snapshot:
        """The whole database as plain rows, read in one transaction."""
        conn = self._connection()
        with translated():
            conn.execute("BEGIN")
            try:
                return read_snapshot(conn)
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _begin_immediate(self, conn: sqlite3.Connection) -> int:
        """Take SQLite's write lock; return nanoseconds spent waiting for it (0 if free).

        SQLite's own busy handler sleeps 1, 2, 5 ... up to 100 ms between tries, so a writer
        that has waited long polls rarely and loses to newcomers (p99 in seconds under a
        rush). We poll ourselves with short jittered sleeps capped at 1 ms instead.
        """
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            return self._poll_begin(conn)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self.options.busy_timeout_ms}")

    def _poll_begin(self, conn: sqlite3.Connection) -> int:
        started = time.monotonic_ns()
        deadline = started + self.options.busy_timeout_ms * 1_000_000
        pause_s = _FIRST_POLL_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise translate(exc) from exc
            else:
                waited = time.monotonic_ns() - started
                return waited if pause_s > _FIRST_POLL_S else 0
            if time.monotonic_ns() > deadline:
                raise StoreBusyError("the database stayed locked longer than the busy timeout")
            time.sleep(random.uniform(pause_s / 2, pause_s))
            pause_s = min(pause_s * 2, _LAST_POLL_S)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=self.options.busy_timeout_ms / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA synchronous = {self.options.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        with self._connections_lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
