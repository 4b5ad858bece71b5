"""Versioned schema: numbered SQL files applied in order, the version kept in the database.

A database whose version is newer than the newest migration this code ships is refused
(SchemaVersionError) instead of being opened by code that does not know its tables.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

from lastseat.domain.errors import SchemaVersionError

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NET = re.compile(r"-- safety-net:begin\n.*?-- safety-net:end\n", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL script."""

    version: int
    sql: str


def migrations() -> list[Migration]:
    """Every shipped migration, oldest first."""
    folder = resources.files("lastseat.adapters.sqlite") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    """The schema version this code writes."""
    return migrations()[-1].version


def current_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the database, 0 for an empty file."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM schema_meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, *, safety_nets: bool) -> int:
    """Bring the schema up to date under the write lock; return the version now in place.

    `conn` must be in autocommit mode. Several processes may call this at once: the write lock
    makes the second one see the first one's work.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = current_version(conn)
        target = latest_version()
        if version > target:
            raise SchemaVersionError(
                f"database schema v{version} is newer than this lastseat (v{target}); "
                "upgrade lastseat"
            )
        if version == 0:
            conn.execute("CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "INSERT INTO schema_meta VALUES ('safety_nets', ?)",
                ("on" if safety_nets else "off",),
            )
            conn.execute("INSERT INTO schema_meta VALUES ('version', '0')")
        nets = safety_nets_enabled(conn)
        for migration in migrations():
            if migration.version > version:
                _apply(conn, migration, nets)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


def safety_nets_enabled(conn: sqlite3.Connection) -> bool:
    """False only for databases made on purpose without invariant-backing constraints."""
    row = conn.execute("SELECT value FROM schema_meta WHERE key = 'safety_nets'").fetchone()
    return row is None or row[0] == "on"


def _apply(conn: sqlite3.Connection, migration: Migration, safety_nets: bool) -> None:
    sql = migration.sql if safety_nets else _NET.sub("", migration.sql)
    for statement in _statements(sql):
        conn.execute(statement)
    conn.execute(
        "UPDATE schema_meta SET value = ? WHERE key = 'version'", (str(migration.version),)
    )


def _statements(sql: str) -> list[str]:
    # Our migrations hold no semicolons inside literals or triggers, so a split is exact.
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
