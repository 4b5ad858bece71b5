"""A pool counter driven below zero is a BookkeepingError (a server fault), not a conflict.

See tests/api/test_api_bookkeeping_fault.py for the HTTP side: 500, counted, not retried.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from lastseat.bootstrap import build, open_store
from lastseat.domain.errors import BookkeepingError, ConflictError
from lastseat.domain.holds import PoolClaim
from lastseat.domain.inventory import build_event
from lastseat.domain.money import Money


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


def test_a_counter_driven_below_zero_is_a_bookkeeping_error_and_changes_nothing(
    db_url: str,
) -> None:
    store = open_store(db_url)
    try:
        services = build(store)
        services.catalog.create_event(
            build_event("ev", "Show", "EUR", [], [("standing", 10, Money(500, "EUR"))])
        )
        hold = services.booking.place_hold("alice", PoolClaim("ev", "ev/standing", 2))
        break_held(db_url, "ev/standing")

        with pytest.raises(BookkeepingError) as caught:
            services.booking.release_hold("alice", hold.hold_id)

        assert not isinstance(caught.value, ConflictError)
        assert "held" in caught.value.constraint
        assert services.booking.hold("alice", hold.hold_id).status.value == "active"
    finally:
        store.close()
