"""The provider's durable store: one SQLite file, WAL, explicit BEGIN IMMEDIATE write transactions.

An idempotency key is checked and its answer stored in the *same* write transaction as the
payment it creates, so two concurrent requests with one key cannot both charge::

    A: SELECT key -> none            B: SELECT key -> none
    A: INSERT payment; INSERT key    B: INSERT payment; INSERT key      # charged twice

BEGIN IMMEDIATE takes SQLite's write lock before the first read, so B's SELECT runs only after
A committed, finds A's key, and replays A's stored answer. The key's primary key is the
schema's own backstop. The driver runs in autocommit mode and every transaction is begun by
hand (the project's way: Python's implicit BEGIN would come after the check-SELECT).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastseat.provider.problems import ProblemError

BUSY_TIMEOUT_MS = 10_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL,
    customer TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('authorized', 'captured', 'declined')),
    decline_code TEXT,
    refunded_minor INTEGER NOT NULL DEFAULT 0
        CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    captures INTEGER NOT NULL DEFAULT 0 CHECK (captures <= 1),
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_by_key ON payments (idempotency_key);
CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL,
    payment_id TEXT NOT NULL REFERENCES payments (payment_id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


class ProviderStoreError(Exception):
    """The provider's database cannot be opened or used."""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a mutating request answered; `replayed` when it came from the key's record."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


Work = Callable[[sqlite3.Connection], tuple[int, dict[str, Any]]]


def fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """A digest of what a request asks for: same key + other fingerprint = key misuse."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ProviderStore:
    """The provider's SQLite file; one connection per thread, one writer at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._writer = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            conn = self._connection()
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self.close()
            raise ProviderStoreError(f"cannot open provider database {self.path}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's lock; commits only if the block succeeds."""
        conn = self._connection()
        # Threads of this process queue here, so only one connection polls SQLite's lock.
        with self._writer, _busy_as_503():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot (WAL readers never block the writer)."""
        conn = self._connection()
        with _busy_as_503():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")

    def idempotent(self, key: str, request_fingerprint: str, work: Work) -> StoredAnswer:
        """Run `work` once per key and store its answer; replay the stored answer after that.

        A `ProblemError` from `work` rolls everything back and stores nothing, so the same key
        may be tried again once the cause is gone.
        """
        with self.write() as conn:
            row = conn.execute(
                "SELECT fingerprint, status_code, body FROM idempotency_keys WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None:
                if row[0] != request_fingerprint:
                    raise ProblemError(
                        422,
                        "idempotency-key-reused",
                        "this Idempotency-Key was used with a different request",
                    )
                return StoredAnswer(int(row[1]), json.loads(row[2]), replayed=True)
            status_code, body = work(conn)
            conn.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, status_code, body, created)"
                " VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (key, request_fingerprint, status_code, json.dumps(body)),
            )
            return StoredAnswer(status_code, body, replayed=False)

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        # FULL: an answered charge survives a crash of the provider (kill -9) and of the host.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._connections_lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn


@contextmanager
def _busy_as_503() -> Iterator[None]:
    """Database trouble is the provider's fault: a retryable 503, never a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise ProblemError(
            503, "store-unavailable", f"database error: {type(exc).__name__}", {"Retry-After": "1"}
        ) from exc
