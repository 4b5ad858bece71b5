"""Deterministic two-transaction interleavings on PostgreSQL, forced with events, not sleeps.

Transaction A takes a row and stays open; transaction B runs in a thread until the server shows
it waiting for A's lock; only then does A end. What B does next is the property under test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from lastseat.adapters.postgres import schema
from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import build
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import LockTimeoutError
from lastseat.domain.holds import Hold, HoldStatus, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.service.ports import InventoryTx, Stage
from lastseat.service.statistics import StrategyStatistics

EVENT = "ev1"
SEAT = seat_id_for(EVENT, "A", 1, 1)
WAIT_LIMIT_S = 30
NOW = FakeClock().now()
TTL = timedelta(minutes=10)


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg_dsn, PostgresOptions(max_connections=4, lock_timeout_ms=20_000))
    build(opened).catalog.create_event(
        build_event(EVENT, "Show", "EUR", [SeatBlock("A", 1, 2, Money(1_000, "EUR"))], [])
    )
    yield opened
    opened.close()


def wait_until_someone_waits_for_a_lock(dsn: str) -> None:
    """Return once a session of this database is blocked on a lock (poll the server)."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.005)
    raise AssertionError("no transaction ever waited for the lock")


def hold_for(tx: InventoryTx, hold_id: str) -> None:
    """The hold a claimed seat points at (the foreign key is checked at commit)."""
    claim = SeatClaim(EVENT, (SEAT,))
    tx.insert_hold(Hold(hold_id, "buyer", claim, HoldStatus.ACTIVE, NOW, NOW + TTL))


def second_writer_after_first(
    store: PostgresStore,
    first: Callable[[InventoryTx], object],
    second: Callable[[InventoryTx], int],
) -> int:
    """Run `first` in A, start B's `second` until it blocks, commit A, return B's result."""
    with ThreadPoolExecutor(1) as pool, store.write() as tx_a:
        first(tx_a)
        hold_for(tx_a, "hld_a")

        def in_b() -> int:
            with store.write() as tx_b:
                hold_for(tx_b, "hld_b")
                return second(tx_b)

        b_result = pool.submit(in_b)
        wait_until_someone_waits_for_a_lock(store.dsn)
    return b_result.result(timeout=WAIT_LIMIT_S)


def test_a_conditional_claim_that_waited_for_the_seat_rechecks_it_and_takes_nothing(
    store: PostgresStore,
) -> None:
    taken = second_writer_after_first(
        store,
        lambda tx: tx.claim_seats_if_free([SEAT], "hld_a", Stage.SOLD),
        lambda tx: tx.claim_seats_if_free([SEAT], "hld_b", Stage.SOLD),
    )

    assert taken == 0
    (seat,) = (s for s in store.snapshot().seats if s.seat_id == SEAT)
    assert seat.hold_id == "hld_a"


def test_a_version_checked_claim_that_waited_for_the_seat_sees_the_new_version(
    store: PostgresStore,
) -> None:
    with store.read() as reader:
        (seen,) = reader.read_seats([SEAT], NOW)

    taken = second_writer_after_first(
        store,
        lambda tx: tx.claim_seats_if_version({SEAT: seen.version}, "hld_a", Stage.SOLD),
        lambda tx: tx.claim_seats_if_version({SEAT: seen.version}, "hld_b", Stage.SOLD),
    )

    assert taken == 0


def test_an_unguarded_write_that_waited_for_the_seat_overwrites_it_the_lost_update(
    store: PostgresStore,
) -> None:
    def overwrite(tx: InventoryTx) -> int:
        tx.write_seats([SEAT], "hld_b", Stage.SOLD)
        return 1

    second_writer_after_first(
        store, lambda tx: tx.claim_seats_if_free([SEAT], "hld_a", Stage.SOLD), overwrite
    )

    (seat,) = (s for s in store.snapshot().seats if s.seat_id == SEAT)
    assert seat.hold_id == "hld_b"  # A's sale was silently lost: why naive needs no help to fail


def test_a_writer_that_queued_for_a_row_lock_counts_one_lock_wait(store: PostgresStore) -> None:
    stats = StrategyStatistics()
    with ThreadPoolExecutor(1) as pool, store.write() as tx_a:
        tx_a.lock_seats([SEAT])

        def in_b() -> None:
            with store.write(stats) as tx_b:
                tx_b.lock_seats([SEAT])

        waiting = pool.submit(in_b)
        wait_until_someone_waits_for_a_lock(store.dsn)
    waiting.result(timeout=WAIT_LIMIT_S)

    assert stats.lock_waits == 1
    assert stats.lock_wait_ns > 0
    assert stats.lock_held_ns > 0


def test_a_row_lock_held_past_the_lock_timeout_raises_lock_timeout_error(pg_dsn: str) -> None:
    patient = PostgresStore(pg_dsn, PostgresOptions(max_connections=1))
    hasty = PostgresStore(pg_dsn, PostgresOptions(max_connections=1, lock_timeout_ms=50))
    try:
        build(patient).catalog.create_event(
            build_event(EVENT, "Show", "EUR", [SeatBlock("A", 1, 1, Money(1_000, "EUR"))], [])
        )
        with patient.write() as holder:
            holder.lock_seats([SEAT])
            with pytest.raises(LockTimeoutError), hasty.write() as tx:
                tx.lock_seats([SEAT])
    finally:
        patient.close()
        hasty.close()


def test_many_processes_migrating_one_database_at_once_agree_on_one_schema(pg_dsn: str) -> None:
    start = threading.Barrier(6)

    def open_and_close() -> bool:
        start.wait(timeout=WAIT_LIMIT_S)
        opened = PostgresStore(pg_dsn, PostgresOptions(max_connections=1))
        opened.close()
        return opened.safety_nets

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(lambda _: open_and_close(), range(6)))
    with psycopg.connect(pg_dsn) as conn:
        assert schema.current_version(conn) == schema.latest_version()
