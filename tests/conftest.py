"""Shared fixtures: throwaway databases on every backend.

`db_url` runs a test once on a new SQLite file and once on a new database of a throwaway
PostgreSQL server (started once per session, never skipped: if it cannot start, the tests
that need it error). `db_path` is for tests about SQLite files themselves.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres

BACKENDS = ["sqlite", "postgres"]
# Durability is not under test here; fsync off keeps commits cheap on a busy CI machine.
_PG_SETTINGS = {"fsync": "off", "full_page_writes": "off"}
_numbers = itertools.count(1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new SQLite database inside the test's temp dir."""
    return tmp_path / "lastseat.db"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    """One PostgreSQL server on a free 127.0.0.1 port for the session."""
    with ThrowawayPostgres(_PG_SETTINGS) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file path or a PostgreSQL DSN."""
    if request.param == "sqlite":
        return str(tmp_path / "lastseat.db")
    server: ThrowawayPostgres = request.getfixturevalue("pg_server")
    hint = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower()).strip("_")
    return server.create_database(f"c{next(_numbers)}_{hint}"[:63])
