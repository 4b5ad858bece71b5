"""The PostgreSQL store: a psycopg 3 connection pool, one explicit transaction per unit of work.

Connections run in autocommit mode and every transaction is begun by hand with the isolation
it needs: writes at READ COMMITTED (the row locks and re-checked conditional writes of `tx.py`
are the guard) unless the caller asks for another level (the `serializable` strategy asks for
SERIALIZABLE and retries what PostgreSQL aborts), reads and snapshots as READ ONLY REPEATABLE
READ (one consistent picture across several SELECTs, never blocking or blocked by writers).

Session settings (lock_timeout, synchronous_commit) are sent as startup options, so a pooled
connection costs no extra round trip to configure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from lastseat.adapters.postgres import schema
from lastseat.adapters.postgres.errors import translated
from lastseat.adapters.postgres.records import Conn
from lastseat.adapters.postgres.snapshot import read_snapshot
from lastseat.adapters.postgres.tx import PostgresTx
from lastseat.domain.errors import StoreError
from lastseat.service.ports import InventoryTx, Isolation, ReadTx
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
_BEGIN_WRITE = {level: f"BEGIN ISOLATION LEVEL {level.value.upper()}" for level in Isolation}
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """Pool and session settings; `lock_timeout_ms = 0` waits for row locks forever."""

    min_connections: int = 1
    max_connections: int = 8
    pool_timeout_s: float = 30.0
    connect_timeout_s: int = 10
    lock_timeout_ms: int = 30_000
    synchronous_commit: str = "on"
    safety_nets: bool = True
    application_name: str = "lastseat"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `psycopg.connect` (and for every pooled connection)."""
        settings = {
            "lock_timeout": str(self.lock_timeout_ms),
            "synchronous_commit": self.synchronous_commit,
        }
        return {
            "autocommit": True,
            "connect_timeout": self.connect_timeout_s,
            "application_name": self.application_name,
            "options": " ".join(f"-c {key}={value}" for key, value in settings.items()),
        }


class PostgresStore:
    """A PostgreSQL database; one instance (one pool) per process, shared by its threads."""

    def __init__(self, dsn: str, options: PostgresOptions | None = None) -> None:
        self.options = options or PostgresOptions()
        if self.options.synchronous_commit not in SYNCHRONOUS_COMMIT:
            raise StoreError(f"synchronous_commit must be one of {', '.join(SYNCHRONOUS_COMMIT)}")
        self.dsn = dsn
        kwargs = self.options.connection_kwargs()
        # Migrate on a connection of its own first: a bad DSN then fails at once with the
        # server's reason, instead of as a pool timeout.
        with translated(), psycopg.connect(dsn, **kwargs) as conn:
            schema.migrate(conn, safety_nets=self.options.safety_nets)
            self.safety_nets = schema.safety_nets_enabled(conn)
        self._pool = ConnectionPool(
            dsn,
            min_size=self.options.min_connections,
            max_size=self.options.max_connections,
            kwargs=kwargs,
            timeout=self.options.pool_timeout_s,
            name=self.options.application_name,
            open=True,
        )

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """A read-only transaction: one consistent snapshot, never blocks writers."""
        with self._transaction(_BEGIN_READ) as conn:
            yield PostgresTx(conn)

    @contextmanager
    def write(
        self,
        stats: StrategyStatistics | None = None,
        *,
        isolation: Isolation = Isolation.READ_COMMITTED,
        durable: bool = True,
    ) -> Iterator[InventoryTx]:
        """A write transaction (READ COMMITTED unless asked); commits only if the block succeeds.

        `durable=False` commits with `synchronous_commit = off`: COMMIT returns before the WAL
        flush. WAL is one sequence, so any later durable commit flushes it too.

        At SERIALIZABLE (or REPEATABLE READ) PostgreSQL may abort it, at any statement or at
        COMMIT, with SerializationError: then nothing of it was kept and it may be run again.
        """
        stats = stats or StrategyStatistics()
        tx: PostgresTx | None = None
        try:
            with translated(), self._pool.connection() as conn:
                tx = PostgresTx(conn, stats)
                try:
                    # Queued: BEGIN travels with the transaction's first statement.
                    tx.begin(_BEGIN_WRITE[isolation], durable=durable)
                    yield tx
                    tx.commit()  # a queued sale travels with it (sales.py)
                except BaseException:
                    tx.drop_flight()
                    _rollback(conn)  # also after a failed COMMIT: the flight may have skipped it
                    raise
        finally:
            # Row locks are held until COMMIT (its WAL flush included) or ROLLBACK is done.
            if tx is not None and tx.locked_at_ns is not None:
                stats.add(lock_held_ns=time.monotonic_ns() - tx.locked_at_ns)

    def snapshot(self) -> Snapshot:
        """The whole database as plain rows, read in one transaction."""
        with self._transaction(_BEGIN_READ) as conn:
            return read_snapshot(conn)

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self._pool.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Conn]:
        """A pooled connection inside BEGIN ... COMMIT, rolled back if the block raises."""
        with translated(), self._pool.connection() as conn:
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")


def _rollback(conn: Conn) -> None:
    # A broken connection has no transaction left to end; the pool discards it on return.
    if conn.broken or conn.closed:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()
