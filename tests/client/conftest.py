"""A real `lastseat serve` process over SQLite for the client's integration tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_API_TESTS = str(Path(__file__).resolve().parents[1] / "api")
if _API_TESTS not in sys.path:
    sys.path.insert(0, _API_TESTS)

from api_helpers import FORBIDDEN_IN_LOG, Server, serving  # noqa: E402


@pytest.fixture(scope="session")
def client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server over a SQLite file for the client tests of the session."""
    root = tmp_path_factory.mktemp("client-sqlite")
    with serving(str(root / "client.db"), root / "server.log") as server:
        yield server
    text = server.log_text()
    for word in FORBIDDEN_IN_LOG:
        assert word not in text, f"{word!r} in the server log:\n{text[-3000:]}"
