"""One throwaway PostgreSQL server for the whole session, a fresh database for every test.

The server is never skipped: if it cannot start, every test that needs it errors.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres

# Durability is not under test here; fsync off keeps commits cheap on a busy CI machine.
SETTINGS = {"fsync": "off", "full_page_writes": "off"}
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server on a free 127.0.0.1 port, removed at the end of the session."""
    with ThrowawayPostgres(SETTINGS) as server:
        yield server


def database_name(hint: str) -> str:
    """A unique, valid database name that still says which test made it."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")
    return f"t{next(_numbers)}_{cleaned}"[:63]


@pytest.fixture
def pg_dsn(postgres: ThrowawayPostgres, request: pytest.FixtureRequest) -> str:
    """The DSN of an empty database made for this test alone."""
    return postgres.create_database(database_name(request.node.name))
