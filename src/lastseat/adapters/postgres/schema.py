"""Versioned schema for PostgreSQL: numbered SQL files applied in order under an advisory lock.

Many app servers may start at once against one database. Each migrates inside a transaction
that first takes a transaction-scoped advisory lock, so the second one waits, then sees the
first one's version and has nothing left to do. A database whose version is newer than the
newest migration this code ships is refused (SchemaVersionError).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from psycopg import Connection

from lastseat.adapters.sqlite.schema import Migration
from lastseat.domain.errors import SchemaVersionError

# Any constant works as long as every lastseat migrator uses the same one ("lastseat" in ASCII).
MIGRATION_LOCK_KEY = 0x6C61_7374_7365_6174
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NET = re.compile(r"-- safety-net:begin\n.*?-- safety-net:end\n", re.DOTALL)


def load_migrations(package: str) -> list[Migration]:
    """Every numbered SQL script in `package`'s migrations folder, oldest first."""
    folder = resources.files(package) / "migrations"
    found = [
        Migration(int(match.group(1)), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := _FILE.match(entry.name))
    ]
    return sorted(found, key=lambda m: m.version)


def without_safety_nets(sql: str) -> str:
    """The script minus its invariant-backing constraints (for `naive` lab databases only)."""
    return _NET.sub("", sql)


def migrations() -> list[Migration]:
    """Every shipped PostgreSQL migration, oldest first."""
    return load_migrations("lastseat.adapters.postgres")


def latest_version() -> int:
    """The schema version this code writes."""
    return migrations()[-1].version


def current_version(conn: Connection[Any]) -> int:
    """The version recorded in the database, 0 for an empty database."""
    row = conn.execute("SELECT to_regclass('schema_meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT value FROM schema_meta WHERE key = 'version'").fetchone()
    return int(found[0]) if found else 0


def migrate(conn: Connection[Any], *, safety_nets: bool) -> int:
    """Bring the schema up to date; return the version now in place.

    `conn` must be in autocommit mode; the whole migration is one transaction.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        version = current_version(conn)
        target = latest_version()
        if version > target:
            raise SchemaVersionError(
                f"database schema v{version} is newer than this lastseat (v{target}); "
                "upgrade lastseat"
            )
        if version == 0:
            _create_meta(conn, safety_nets)
        nets = safety_nets_enabled(conn)
        for migration in migrations():
            if migration.version > version:
                _apply(conn, migration, nets)
    return target


def safety_nets_enabled(conn: Connection[Any]) -> bool:
    """False only for databases made on purpose without invariant-backing constraints."""
    row = conn.execute("SELECT value FROM schema_meta WHERE key = 'safety_nets'").fetchone()
    return row is None or row[0] == "on"


def _create_meta(conn: Connection[Any], safety_nets: bool) -> None:
    conn.execute("CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(
        "INSERT INTO schema_meta VALUES ('safety_nets', %s), ('version', '0')",
        ("on" if safety_nets else "off",),
    )


def _apply(conn: Connection[Any], migration: Migration, safety_nets: bool) -> None:
    sql = migration.sql if safety_nets else without_safety_nets(migration.sql)
    # Without parameters psycopg sends the script as one simple query: all statements at once.
    conn.execute(sql)
    conn.execute(
        "UPDATE schema_meta SET value = %s WHERE key = 'version'", (str(migration.version),)
    )
