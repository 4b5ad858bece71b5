"""A constraint that catches our own books going wrong is a server fault, not "try again".

Two kinds of constraint refuse writes. One refuses a racing sale (a second valid ticket for a
seat, a pool claim past capacity): the seat or units were taken, a conflict (409). The other
catches lastseat's own bookkeeping going wrong (a pool's `held` below zero): retrying meets
the same books, so answering 409 `conflict` (a type clients retry) wedged a pool for good.
That second kind is a `BookkeepingError`: rolled back, logged, counted on /metrics, answered
500 `bookkeeping-fault`, and not retried by the SDK.

The books are broken by hand (`held` set to zero under an active 2-unit hold), then the hold
is released, which would drive `held` to -2.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from api_helpers import Api, assert_problem, serving

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.client import BookkeepingFaultError
from lastseat.client.errors import problem_error_class


def break_held(db: str, pool_id: str) -> None:
    """Set a pool's `held` to zero behind lastseat's back."""
    statement = "UPDATE pools SET held = 0 WHERE pool_id = "
    if db.startswith("postgresql"):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(statement + "%s", (pool_id,))
        return
    with sqlite3.connect(db) as lite:
        lite.execute(statement + "?", (pool_id,))
    lite.close()


def test_the_sdk_does_not_retry_a_bookkeeping_fault() -> None:
    error = problem_error_class("https://lastseat.dev/problems/bookkeeping-fault")
    assert error is BookkeepingFaultError
    assert not error({"type": "x"}, status=500).may_retry


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, str]]:
    """A server of its own over a database this test may break by hand."""
    if request.param == "sqlite":
        db = str(tmp_path / "books.db")
    else:
        pg: ThrowawayPostgres = request.getfixturevalue("api_postgres")
        db = pg.create_database(f"books_{tmp_path.name[-20:].lower().replace('-', '_')}")
    with serving(db, tmp_path / "server.log") as server:
        api = Api(server)
        try:
            yield api, db
        finally:
            api.close()


def test_the_api_answers_a_bookkeeping_fault_with_500_counts_it_and_keeps_the_hold(
    served: tuple[Api, str],
) -> None:
    api, db = served
    event_id = api.event(capacity=10)
    _, buyer = api.buyer()
    placed = api.http.post(
        "/holds", headers=buyer, json={"event_id": event_id, "pool": "standing", "quantity": 2}
    )
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["hold_id"]
    break_held(db, f"{event_id}/standing")

    released = api.http.delete(f"/holds/{hold_id}", headers=buyer)

    problem = assert_problem(released, 500, "bookkeeping-fault")
    assert "held" not in problem["detail"] and "pools" not in problem["detail"]
    assert api.http.get(f"/holds/{hold_id}", headers=buyer).json()["status"] == "active"
    metrics = api.http.get("/metrics").text
    assert 'lastseat_bookkeeping_faults_total{constraint="' in metrics
    assert "bookkeeping fault on DELETE" in api.server.log_text()
