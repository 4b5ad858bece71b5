"""The PostgreSQL-only strategies and options, under forced interleavings and real races.

First the anomalies themselves, in naive-style SQL on two connections driven step by step
from one thread (no statement ever waits, so the order is exactly as written): a lost update
on an assigned seat at READ COMMITTED, a lost update on a pool counter, and write skew on a
GA count at REPEATABLE READ. Each is shown to oversell, and the isolation level that stops
it is shown to stop it.

Then the same interleaving through every strategy (tests/postgres/duel.py): `naive` sells
twice, every guarded strategy sells once; `serializable` gets there by one 40001 and one
retry; `row-lock-nowait` fails the second buyer at once, `row-lock` waits until lock_timeout,
`row-lock-skip-locked` gives two best-available buyers disjoint seats without waiting. Last,
multi-process races for each new strategy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from duel import EUR, EVENT, POOL, SECTION, duel, open_shop
from pg_racers import BUYERS, race, valid_tickets_for_the_seat

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import build, open_store
from lastseat.concurrency.registry import (
    GUARDED_NAMES,
    LOCK_SERVICE_NAMES,
    STRATEGY_NAMES,
    make_strategy,
)
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import (
    ConflictError,
    LockNotAvailableError,
    LockTimeoutError,
    NotFoundError,
    SerializationError,
    UnavailableError,
    ValidationError,
)
from lastseat.domain.holds import Claim, Hold, HoldStatus, PoolClaim, SeatClaim, SectionClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.domain.orders import Order, OrderStatus
from lastseat.domain.tickets import Ticket
from lastseat.service.booking import Purchase
from lastseat.service.ports import InventoryTx, Isolation, ReadTx, Stage, Store
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

NOW = FakeClock().now()
SEAT = seat_id_for(EVENT, SECTION, 1, 1)
SEATS = [seat_id_for(EVENT, SECTION, 1, n) for n in range(1, 5)]
GUARDED = ["atomic", "row-lock", "optimistic", "serializable"]
SEAT_CLAIM = SeatClaim(EVENT, (SEAT,))
LAST_UNIT = PoolClaim(EVENT, POOL, 1)


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg_dsn, PostgresOptions(safety_nets=False, max_connections=4))
    yield opened
    opened.close()


def valid_tickets(snapshot: Snapshot) -> Counter[str]:
    return Counter(t.seat_id or t.pool_id or "" for t in snapshot.tickets if t.status == "valid")


def sell(tx: InventoryTx, buyer: str, claim: Claim) -> None:
    """The records of a sale (hold, confirmed order, tickets); no money, no inventory write."""
    hold = Hold(f"hld_{buyer}", buyer, claim, HoldStatus.CONVERTED, NOW, NOW)
    tx.insert_hold(hold)
    order = Order(
        f"ord_{buyer}", buyer, EVENT, hold.hold_id, OrderStatus.CONFIRMED, Money(1, EUR), 1, NOW
    )
    tx.insert_order(order)
    seat_id, pool_id = (SEAT, None) if isinstance(claim, SeatClaim) else (None, POOL)
    tx.insert_tickets(
        [Ticket(f"tkt_{buyer}", order.order_id, EVENT, seat_id, pool_id, "c" + buyer)]
    )


# -- the anomalies, in naive-style SQL ------------------------------------------------------


@pytest.mark.parametrize("isolation", [Isolation.READ_COMMITTED, Isolation.REPEATABLE_READ])
def test_read_then_unconditional_write_on_a_seat_is_a_lost_update_at_read_committed_only(
    store: PostgresStore, pg_dsn: str, isolation: Isolation
) -> None:
    """A reads free, B reads free, A writes and commits, B writes: B's write lands at
    READ COMMITTED (the seat is sold twice) and is refused at REPEATABLE READ."""
    open_shop(pg_dsn)
    outcome: object = None
    try:
        with store.write(isolation=isolation) as tx_b:
            with store.write(isolation=isolation) as tx_a:
                assert [s.status for s in tx_a.read_seats([SEAT], NOW)] == ["available"]
                assert [s.status for s in tx_b.read_seats([SEAT], NOW)] == ["available"]
                tx_a.write_seats([SEAT], "hld_a", Stage.SOLD)
                sell(tx_a, "a", SEAT_CLAIM)
            tx_b.write_seats([SEAT], "hld_b", Stage.SOLD)
            sell(tx_b, "b", SEAT_CLAIM)
    except SerializationError as exc:
        outcome = exc

    tickets = valid_tickets(store.snapshot())[SEAT]
    if isolation is Isolation.READ_COMMITTED:
        assert outcome is None
        assert tickets == 2  # sold twice; the seat row names only B
    else:
        assert isinstance(outcome, SerializationError)
        assert isinstance(outcome, ConflictError)
        assert tickets == 1


@pytest.mark.parametrize("isolation", [Isolation.READ_COMMITTED, Isolation.REPEATABLE_READ])
def test_a_pool_counter_written_from_a_stale_read_loses_a_sale_at_read_committed_only(
    store: PostgresStore, pg_dsn: str, isolation: Isolation
) -> None:
    open_shop(pg_dsn, capacity=2)
    refused = False
    try:
        with store.write(isolation=isolation) as tx_b:
            with store.write(isolation=isolation) as tx_a:
                seen_a, seen_b = (tx.read_pool(POOL, NOW) for tx in (tx_a, tx_b))
                assert seen_a is not None and seen_b is not None
                tx_a.write_pool(POOL, Stage.SOLD, seen_a.sold + 1)
                sell(tx_a, "a", LAST_UNIT)
            tx_b.write_pool(POOL, Stage.SOLD, seen_b.sold + 1)
            sell(tx_b, "b", LAST_UNIT)
    except SerializationError:
        refused = True

    snapshot = store.snapshot()
    (pool,) = snapshot.pools
    if isolation is Isolation.READ_COMMITTED:
        assert (refused, pool.sold, valid_tickets(snapshot)[POOL]) == (False, 1, 2)  # lost update
    else:
        assert (refused, pool.sold, valid_tickets(snapshot)[POOL]) == (True, 1, 1)


# Capacity checked by counting the rows that hold units, units added as new rows: two
# transactions write different rows, so REPEATABLE READ sees no conflict (write skew).
UNITS_LEFT = (
    "SELECT p.capacity - COALESCE(SUM(h.quantity), 0) FROM pools p LEFT JOIN holds h"
    " ON h.pool_id = p.pool_id AND h.status IN ('active', 'converted')"
    " WHERE p.pool_id = %s GROUP BY p.capacity"
)
ADD_UNIT = (
    "INSERT INTO holds (hold_id, fence, event_id, buyer_id, status, pool_id, quantity,"
    " created_at_us, expires_at_us) VALUES (%s, nextval('hold_fences'), %s, %s, 'active', %s, 1,"
    " 0, 9000000000000000)"
)


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_write_skew_on_a_ga_count_oversells_at_repeatable_read_and_not_at_serializable(
    pg_dsn: str, level: str
) -> None:
    open_shop(pg_dsn, capacity=1)
    a, b = (psycopg.connect(pg_dsn, autocommit=True) for _ in range(2))
    try:
        for conn in (a, b):
            conn.execute(f"BEGIN ISOLATION LEVEL {level}")
        assert [c.execute(UNITS_LEFT, (POOL,)).fetchone() for c in (a, b)] == [(1,), (1,)]
        for name, conn in (("a", a), ("b", b)):
            conn.execute(ADD_UNIT, (f"hld_{name}", EVENT, name, POOL))
        a.execute("COMMIT")
        try:
            b.execute("COMMIT")
            refused = False
        except psycopg.errors.SerializationFailure:
            refused = True
        left = a.execute(UNITS_LEFT, (POOL,)).fetchone()
    finally:
        a.close()
        b.close()

    if level == "REPEATABLE READ":
        assert (refused, left) == (False, (-1,))  # two units sold of a capacity of one
    else:
        assert (refused, left) == (True, (0,))


# -- the same interleaving through every strategy -------------------------------------------


@pytest.mark.parametrize("claim", [SEAT_CLAIM, LAST_UNIT], ids=["seat", "pool"])
def test_naive_lets_both_buyers_check_before_either_writes_and_oversells(
    pg_dsn: str, claim: Claim
) -> None:
    open_shop(pg_dsn, capacity=2, sold_units=1)

    result = duel(pg_dsn, "naive", claim)

    assert result.b_checked_before_a_wrote
    assert not result.errors()
    if isinstance(claim, SeatClaim):
        assert valid_tickets(result.snapshot)[SEAT] == 2
    else:
        assert valid_tickets(result.snapshot)[POOL] == 3  # capacity 2
        assert result.snapshot.pools[0].sold == 2  # and the counter lost a sale


@pytest.mark.parametrize("strategy", GUARDED)
@pytest.mark.parametrize("claim", [SEAT_CLAIM, LAST_UNIT], ids=["seat", "pool"])
def test_every_guarded_strategy_sells_the_last_seat_or_unit_once_in_the_same_interleaving(
    pg_dsn: str, strategy: str, claim: Claim
) -> None:
    open_shop(pg_dsn, capacity=2, sold_units=1)

    result = duel(pg_dsn, strategy, claim)

    assert not result.a.failed
    assert result.errors() == Counter({UnavailableError: 1})
    # Either B got as far as naive's B (checked, then A wrote), or A's lock stopped it before.
    if strategy in ("optimistic", "serializable"):
        assert result.b_checked_before_a_wrote
    else:
        assert result.b_was_blocked and not result.b_checked_before_a_wrote
    tickets = valid_tickets(result.snapshot)  # one pool unit was sold before the duel
    if isinstance(claim, SeatClaim):
        assert (tickets[SEAT], tickets[POOL]) == (1, 1)
    else:
        assert (tickets[POOL], result.snapshot.pools[0].sold) == (2, 2)


def test_serializable_aborts_the_second_claim_with_40001_retries_it_and_refuses_it(
    pg_dsn: str,
) -> None:
    open_shop(pg_dsn)

    result = duel(pg_dsn, "serializable", SEAT_CLAIM)

    assert result.b_checked_before_a_wrote  # both read the seat free at SERIALIZABLE
    assert isinstance(result.b.outcome, UnavailableError)
    b, a = result.b.stats, result.a.stats
    assert (b.attempts, b.conflicts, b.retries) == (2, 1, 1)
    assert (a.attempts, a.conflicts, a.retries) == (1, 0, 0)
    assert valid_tickets(result.snapshot) == Counter({SEAT: 1})


class IgnoresIsolation:
    """A store that runs every write at READ COMMITTED, whatever the strategy asks for."""

    def __init__(self, inner: PostgresStore) -> None:
        self.inner = inner

    def read(self) -> AbstractContextManager[ReadTx]:
        return self.inner.read()

    def write(
        self,
        stats: StrategyStatistics | None = None,
        *,
        isolation: Isolation = Isolation.READ_COMMITTED,
        durable: bool = True,
    ) -> AbstractContextManager[InventoryTx]:
        return self.inner.write(stats, durable=durable)

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


def test_serializable_code_without_its_isolation_level_sells_the_seat_twice(
    pg_dsn: str,
) -> None:
    """Its read and write are unguarded: the isolation level is the whole of its safety."""
    open_shop(pg_dsn)

    def wrap(store: PostgresStore) -> Store:
        return IgnoresIsolation(store)

    result = duel(pg_dsn, "serializable", SEAT_CLAIM, wrap=wrap)

    assert not result.errors()
    assert valid_tickets(result.snapshot)[SEAT] == 2


def test_row_lock_nowait_fails_the_second_claimant_at_once_while_the_first_holds_the_lock(
    pg_dsn: str,
) -> None:
    open_shop(pg_dsn)

    result = duel(pg_dsn, "row-lock-nowait", SEAT_CLAIM)

    assert result.b_done_before_a_went_on and not result.b_was_blocked
    assert isinstance(result.b.outcome, LockNotAvailableError)
    assert isinstance(result.b.outcome, ConflictError)  # 409, "try again"
    assert (result.b.stats.conflicts, result.b.stats.lock_waits) == (1, 0)
    assert isinstance(result.a.outcome, Purchase)
    assert valid_tickets(result.snapshot) == Counter({SEAT: 1})


@pytest.mark.parametrize("claim", [SEAT_CLAIM, LAST_UNIT], ids=["seat", "pool"])
def test_row_lock_waits_for_the_lock_until_lock_timeout_and_counts_the_timeout(
    pg_dsn: str, claim: Claim
) -> None:
    open_shop(pg_dsn)

    result = duel(pg_dsn, "row-lock", claim, until="done", b_lock_timeout_ms=100)

    assert result.b_done_before_a_went_on
    assert isinstance(result.b.outcome, LockTimeoutError)
    assert result.b.stats.conflicts == 1
    assert isinstance(result.a.outcome, Purchase)


def test_two_best_available_claims_under_skip_locked_get_disjoint_seats_without_waiting(
    pg_dsn: str,
) -> None:
    open_shop(pg_dsn, seats=4)

    result = duel(pg_dsn, "row-lock-skip-locked", SectionClaim(EVENT, SECTION, 2))

    # B picked and locked its seats while A held two locked: it never queued behind A.
    assert result.b_checked_before_a_wrote and not result.b_was_blocked
    assert isinstance(result.a.outcome, Purchase) and isinstance(result.b.outcome, Purchase)
    seats_a = {t.seat_id for t in result.a.outcome.tickets}
    seats_b = {t.seat_id for t in result.b.outcome.tickets}
    assert len(seats_a) == len(seats_b) == 2
    assert not seats_a & seats_b
    assert valid_tickets(result.snapshot) == Counter(dict.fromkeys(SEATS, 1))
    assert result.b.stats.lock_waits == 0


def test_a_plain_pick_collides_with_a_locked_pick_where_skip_locked_passes_it(
    store: PostgresStore, pg_dsn: str
) -> None:
    """Why SKIP LOCKED: a read does not see A's uncommitted pick, so B picks A's seats."""
    open_shop(pg_dsn, seats=4)
    two = SectionClaim(EVENT, SECTION, 2)

    def pick_by_reading_then_lock() -> None:
        with store.write() as tx_b:
            picked = tx_b.free_seats(two, NOW, start=0.0)
            assert picked == SEATS[:2]  # A's uncommitted pick is invisible to a read
            tx_b.lock_seats(picked, nowait=True)

    with store.write() as tx_a:
        assert tx_a.lock_free_seats(two, start=0.0) == SEATS[:2]
        with pytest.raises(LockNotAvailableError):
            pick_by_reading_then_lock()
        with store.write() as tx_c:
            assert tx_c.lock_free_seats(two, start=0.0) == SEATS[2:]


@pytest.mark.parametrize(
    ("start", "expected"), [(0.0, SEATS[:2]), (0.5, SEATS[2:]), (0.75, [SEATS[0], SEATS[3]])]
)
def test_a_pick_begins_at_its_start_fraction_of_the_section_and_wraps_around(
    store: PostgresStore, pg_dsn: str, start: float, expected: list[str]
) -> None:
    open_shop(pg_dsn, seats=4)
    two = SectionClaim(EVENT, SECTION, 2)

    with store.read() as reader:
        assert reader.free_seats(two, NOW, start) == expected
    with store.write() as tx:
        assert tx.lock_free_seats(two, start) == expected


def test_a_best_available_claim_skips_sold_seats_and_names_a_missing_section(
    pg_dsn: str,
) -> None:
    open_shop(pg_dsn, seats=4)
    store = open_store(pg_dsn)
    try:
        booking = build(store, "row-lock-skip-locked").booking
        booking.quick_buy("a", SeatClaim(EVENT, tuple(SEATS[1:3])))
        with pytest.raises(UnavailableError):
            booking.quick_buy("b", SectionClaim(EVENT, SECTION, 3))
        bought = booking.quick_buy("b", SectionClaim(EVENT, SECTION, 2))
        assert sorted(t.seat_id or "" for t in bought.tickets) == [SEATS[0], SEATS[3]]
        with pytest.raises(NotFoundError):
            booking.quick_buy("b", SectionClaim(EVENT, "Z", 1))
    finally:
        store.close()


# -- SQLite runs the same code ------------------------------------------------------------


# Lock-service strategies need their servers; tests/contract and tests/faults race them.
IN_PROCESS = [n for n in GUARDED_NAMES if n not in LOCK_SERVICE_NAMES]


@pytest.mark.parametrize("strategy", ["naive", *IN_PROCESS])
def test_every_strategy_sells_best_available_seats_and_holds_on_sqlite_too(
    db_path: Path, strategy: str
) -> None:
    store = open_store(str(db_path))
    try:
        services = build(store, strategy, allow_unsafe=True)
        blocks = [SeatBlock(SECTION, 1, 3, Money(1_000, EUR))]
        services.catalog.create_event(build_event(EVENT, "Show", EUR, blocks, []))
        services.wallets.fund_wallets({"a": Money(10_000, EUR)})
        hold = services.booking.place_hold(
            "a", SectionClaim(EVENT, SECTION, 2), timedelta(minutes=1)
        )
        bought = services.booking.quick_buy("a", SectionClaim(EVENT, SECTION, 1))
        with pytest.raises(UnavailableError):
            services.booking.quick_buy("a", SectionClaim(EVENT, SECTION, 1))
        paid = services.booking.pay_hold("a", hold.hold_id)
    finally:
        store.close()
    assert isinstance(hold.claim, SeatClaim) and hold.claim.quantity == 2
    sold = {t.seat_id for t in (*bought.tickets, *paid.tickets)}
    assert sold == {seat_id_for(EVENT, SECTION, 1, n) for n in (1, 2, 3)}


def test_every_name_builds_its_strategy_and_a_section_claim_is_validated() -> None:
    plain = [n for n in STRATEGY_NAMES if n not in LOCK_SERVICE_NAMES]
    assert {make_strategy(n, allow_unsafe=True).name for n in plain} == set(plain)
    for name in LOCK_SERVICE_NAMES:
        with pytest.raises(ValidationError):
            make_strategy(name)  # without its lock service
    with pytest.raises(ValidationError):
        make_strategy("row-lock-sometimes")
    for bad in (0, 51, True):
        with pytest.raises(ValidationError):
            SectionClaim(EVENT, SECTION, bad)
    with pytest.raises(ValidationError):
        SectionClaim(EVENT, "no/slash", 1)


# -- races ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "best_available"),
    [
        ("serializable", False),
        ("row-lock", False),
        ("row-lock-nowait", False),
        ("row-lock-skip-locked", True),
        ("serializable", True),
    ],
    ids=["serializable", "row-lock", "row-lock-nowait", "row-lock-skip-locked", "serializable-any"],
)
def test_240_buyers_in_4_processes_get_exactly_one_ticket_from_each_new_strategy(
    pg_dsn: str, strategy: str, best_available: bool
) -> None:
    outcomes, stats, snapshot = race(pg_dsn, strategy, 2.0, best_available=best_available)

    assert sum(outcomes.values()) == len(BUYERS)
    assert outcomes["ok"] == 1
    assert set(outcomes) <= {"ok", "unavailable", "conflict"}
    assert valid_tickets_for_the_seat(snapshot) == 1
    assert [o.status for o in snapshot.orders] == ["confirmed"]
    assert sum(a.balance_minor for a in snapshot.accounts) == 0
    assert stats["attempts"] >= len(BUYERS)
    if strategy == "serializable" and not best_available:
        # Every abort is either tried again or, after the last attempt, reported as a conflict.
        assert stats["conflicts"] == stats["retries"] + outcomes["conflict"]
    if strategy == "row-lock-nowait":
        assert stats["conflicts"] == outcomes["conflict"]
    if strategy in ("row-lock", "row-lock-skip-locked"):
        assert outcomes["conflict"] == 0
