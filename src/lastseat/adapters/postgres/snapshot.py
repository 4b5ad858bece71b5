"""Read the whole PostgreSQL database into the storage-independent Snapshot for the checker."""

from __future__ import annotations

import sqlite3
from typing import cast

from lastseat.adapters.postgres.records import Conn
from lastseat.adapters.sqlite.snapshot import read_snapshot as read_sql_snapshot
from lastseat.service.snapshot import Snapshot


def read_snapshot(conn: Conn) -> Snapshot:
    """Every table the invariants speak about (call inside one REPEATABLE READ transaction).

    The two schemas have the same tables and columns, and the SQLite reader only runs plain
    parameterless SELECTs through `conn.execute(sql)` and iterates the rows, which a psycopg
    connection does alike; so the one reader serves both.
    """
    return read_sql_snapshot(cast(sqlite3.Connection, conn))
