"""Real `lastseat serve` processes, one per backend for the session: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import FORBIDDEN_IN_LOG, Api, Server, serving

from lastseat.adapters.postgres.server import ThrowawayPostgres

PG_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


def assert_clean_log(server: Server) -> None:
    """No crash and no secret in a server's log."""
    text = server.log_text()
    for word in FORBIDDEN_IN_LOG:
        assert word not in text, f"{word!r} in the server log:\n{text[-3000:]}"


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server over a SQLite file for the whole session."""
    root = tmp_path_factory.mktemp("api-sqlite")
    with serving(str(root / "api.db"), root / "server.log") as server:
        yield server
    assert_clean_log(server)


@pytest.fixture(scope="session")
def api_postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL server for the API tests."""
    with ThrowawayPostgres(PG_SETTINGS) as pg:
        yield pg


@pytest.fixture(scope="session")
def pg_server(
    api_postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server over a PostgreSQL database for the whole session."""
    root = tmp_path_factory.mktemp("api-pg")
    dsn = api_postgres.create_database("api")
    with serving(dsn, root / "server.log") as server:
        yield server
    assert_clean_log(server)


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """A client of the session's server on each backend."""
    server = request.getfixturevalue("sqlite_server" if request.param == "sqlite" else "pg_server")
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def sqlite_api(sqlite_server: Server) -> Iterator[Api]:
    """A client of the session's SQLite server (for backend-independent behaviour)."""
    client = Api(sqlite_server)
    yield client
    client.close()
