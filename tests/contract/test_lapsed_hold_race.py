"""A hold that lapses while another buyer queues behind the lock of its claim.

    A: hold 2 units (ttl 1 s): lock the pool, check ... paused at check-to-write
    B: hold 1 unit, by a clock at which A's hold has lapsed: ... waits for A's lock
    A: write, insert the hold, COMMIT
    B: (lock) A's hold has lapsed: expire it, give its 2 units back once, take 1

`row-lock` used to look for lapsed holds *before* its lock wait (A's hold was not committed
yet, so there was none) and to read the pool *after* it, counting A's lapsed units as free:
it wrote `held` as if they had been given back while A's hold stayed active. The next
expiry gave them back a second time, `held` went below zero, the schema's CHECK refused,
and every later claim on the pool failed. The same read-after-wait let B overwrite a
lapsed seat hold's seat without expiring that hold.

Every strategy runs the same steps on both backends; where the first buyer holds a
database lock at its pause (PostgreSQL), the test first sees the second buyer waiting on
it, so the interleaving above is forced, not hoped for. Afterwards the world must agree
with itself: `held` equals the units of the active holds, every active hold owns its
seats, and a sweep at a later time brings `held` to zero and the pool sells again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import LockServices, Services, build, open_store
from lastseat.concurrency.base import is_free, read_claim, refusal, write_over
from lastseat.concurrency.registry import STRATEGY_NAMES
from lastseat.concurrency.row_lock import RowLockStrategy
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import LastseatError
from lastseat.domain.holds import Claim, Hold, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.lab.lock_servers import lock_services_for
from lastseat.service.ports import InventoryTx, Pause, Stage, Store, no_pause
from lastseat.service.snapshot import Snapshot

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOLD_TTL = timedelta(seconds=1)
LAPSED = T0 + timedelta(seconds=5)  # B's clock: A's hold lapsed 4 s ago
SEAT = "ev/A/0001/0001"
POOL = "ev/standing"
CAPACITY = 10
# How long to look for B queueing where it cannot be seen (SQLite's write lock, a lock
# service): the steps stay correct either way, only the interleaving is not forced there.
UNSEEN_WAIT_S = 1.0
WAIT_LIMIT_S = 60.0
# Strategies whose first buyer holds a PostgreSQL lock at its pause, so B visibly waits.
PG_LOCK_AT_PAUSE = {"atomic", "row-lock", "row-lock-skip-locked", "pg-advisory", "batched"}


@dataclass
class PauseOnce:
    """A's pause hook: say "paused", then wait until B is queued (first attempt only)."""

    paused: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        if self.paused.is_set():
            return  # a retry: the interleaving was already staged
        self.paused.set()
        assert self.go.wait(WAIT_LIMIT_S), "B never got queued"


def setup(db: str) -> None:
    store = open_store(db)
    try:
        build(store).catalog.create_event(
            build_event(
                "ev",
                "Show",
                "EUR",
                [SeatBlock("A", 1, 2, Money(1_000, "EUR"))],
                [("standing", CAPACITY, Money(500, "EUR"))],
            )
        )
    finally:
        store.close()


@contextmanager
def buyer(
    db: str, strategy: str, locks: LockServices, clock: FakeClock, pause: Pause = no_pause
) -> Iterator[Services]:
    store = open_store(db, create=False)
    services = build(store, strategy, allow_unsafe=True, locks=locks, pause=pause, clock=clock)
    try:
        yield services
    finally:
        services.close()
        services.store.close()


def waiting_backends(db: str) -> int:
    """Sessions of this database queued on a lock (heavyweight: row, tuple, advisory)."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until_queued(db: str, strategy: str, b_done: threading.Event) -> bool:
    """True once B is seen queued on a PostgreSQL lock; False if it finished or is unseen."""
    if not (db.startswith("postgresql") and strategy in PG_LOCK_AT_PAUSE):
        b_done.wait(UNSEEN_WAIT_S)
        return False
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline and not b_done.is_set():
        if waiting_backends(db) > 0:
            return True
        b_done.wait(0.01)
    return False


@dataclass
class Staged:
    a: Hold | LastseatError | None = None
    b: Hold | LastseatError | None = None
    queued: bool = False


def stage(db: str, strategy: str, locks: LockServices, a_claim: Claim, b_claim: Claim) -> Staged:
    hook = PauseOnce()
    staged = Staged()
    b_done = threading.Event()
    with ExitStack() as stack:
        a = stack.enter_context(buyer(db, strategy, locks, pause=hook, clock=FakeClock(T0)))
        b = stack.enter_context(buyer(db, strategy, locks, clock=FakeClock(LAPSED)))

        def run_a() -> None:
            try:
                staged.a = a.booking.place_hold("a", a_claim, HOLD_TTL)
            except LastseatError as exc:
                staged.a = exc

        def run_b() -> None:
            try:
                staged.b = b.booking.place_hold("b", b_claim, timedelta(minutes=10))
            except LastseatError as exc:
                staged.b = exc
            finally:
                b_done.set()

        thread_a = threading.Thread(target=run_a)
        thread_a.start()
        assert hook.paused.wait(WAIT_LIMIT_S), "A never reached its check-to-write point"
        thread_b = threading.Thread(target=run_b)
        thread_b.start()
        staged.queued = wait_until_queued(db, strategy, b_done)
        hook.go.set()
        thread_a.join(WAIT_LIMIT_S)
        thread_b.join(WAIT_LIMIT_S)
        assert not thread_a.is_alive() and not thread_b.is_alive()
    return staged


def snapshot(db: str) -> Snapshot:
    store = open_store(db, create=False)
    try:
        return store.snapshot()
    finally:
        store.close()


def assert_consistent(world: Snapshot) -> None:
    active = [h for h in world.holds if h.status == "active"]
    for pool in world.pools:
        held_units = sum(h.quantity for h in active if h.pool_id == pool.pool_id)
        assert pool.held == held_units, f"{pool.pool_id}: held {pool.held}, holds {held_units}"
    owner = {s.seat_id: s.hold_id for s in world.seats if s.status == "held"}
    for hold in active:
        for seat_id in hold.seat_ids:
            assert owner.get(seat_id) == hold.hold_id, f"{hold.hold_id} lost {seat_id}"


def sweep_later(db: str) -> int:
    with buyer(db, "atomic", LockServices(), clock=FakeClock(T0 + timedelta(hours=1))) as later:
        return later.booking.expire_lapsed_holds()


@pytest.fixture(params=[n for n in STRATEGY_NAMES if n != "naive"])
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def locks(strategy: str) -> Iterator[LockServices]:
    with lock_services_for(strategy) as services:
        yield services


@pytest.mark.slow
def test_a_pool_hold_that_lapses_while_a_claim_queues_is_given_back_once(
    db_url: str, strategy: str, locks: LockServices
) -> None:
    setup(db_url)
    staged = stage(db_url, strategy, locks, PoolClaim("ev", POOL, 2), PoolClaim("ev", POOL, 1))
    assert isinstance(staged.a, Hold), staged.a
    # NOWAIT turns B's queueing into an at-once conflict; every other strategy sells to B.
    assert isinstance(staged.b, Hold) or strategy == "row-lock-nowait", staged.b
    if db_url.startswith("postgresql") and strategy in PG_LOCK_AT_PAUSE:
        assert staged.queued, "B was never seen waiting for A's lock"
    assert_consistent(snapshot(db_url))
    sweep_later(db_url)
    world = snapshot(db_url)
    assert_consistent(world)
    assert world.pools[0].held == 0
    with buyer(db_url, strategy, locks, clock=FakeClock(T0 + timedelta(hours=2))) as c:
        c.booking.place_hold("c", PoolClaim("ev", POOL, CAPACITY), HOLD_TTL)  # not wedged


@pytest.mark.slow
def test_a_seat_hold_that_lapses_while_a_claim_queues_is_expired_not_overwritten(
    db_url: str, strategy: str, locks: LockServices
) -> None:
    setup(db_url)
    seat = SeatClaim("ev", (SEAT,))
    staged = stage(db_url, strategy, locks, seat, seat)
    # Where B did not queue (optimistic, serializable, lock services) it may take the seat
    # first, and A loses it fairly; where it queued, A has it and B takes it once it lapsed.
    assert isinstance(staged.a, Hold) or isinstance(staged.b, Hold), staged
    if db_url.startswith("postgresql") and strategy in PG_LOCK_AT_PAUSE:
        assert staged.queued, "B was never seen waiting for A's lock"
    world = snapshot(db_url)
    assert_consistent(world)
    holds = {h.hold_id: h for h in world.holds}
    if isinstance(staged.a, Hold) and isinstance(staged.b, Hold):  # B took the lapsed seat
        assert holds[staged.a.hold_id].status != "active"
        assert holds[staged.b.hold_id].status == "active"


def _look_before_the_wait(
    self: RowLockStrategy,
    store: Store,
    claim: Claim,
    stage: Stage,
    hold_id: str,
    now: datetime,
    finish: Callable[[InventoryTx], object],
) -> object:
    """`row-lock` as it was: lapsed holds looked for before the lock wait."""
    with store.write(self.statistics()) as tx:
        tx.release_lapsed_holds(claim, now)
        self._lock(tx, claim)
        seen = read_claim(tx, claim, now)
        if not is_free(claim, seen):
            raise refusal(tx, claim)
        self.pause()
        write_over(tx, claim, hold_id, stage, seen)
        return finish(tx)


@pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="control: lapsed holds looked for before the wait"
)
@pytest.mark.parametrize(
    ("a_claim", "b_claim"),
    [
        (PoolClaim("ev", POOL, 2), PoolClaim("ev", POOL, 1)),
        (SeatClaim("ev", (SEAT,)), SeatClaim("ev", (SEAT,))),
    ],
    ids=["pool", "seat"],
)
def test_control_row_lock_looking_before_the_wait_keeps_a_lapsed_hold_alive(
    pg_server: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch, a_claim: Claim, b_claim: Claim
) -> None:
    monkeypatch.setattr(RowLockStrategy, "_under_lock", _look_before_the_wait)
    db = pg_server.create_database(f"lapsed_control_{time.monotonic_ns()}")
    setup(db)
    staged = stage(db, "row-lock", LockServices(), a_claim, b_claim)
    assert staged.queued
    assert_consistent(snapshot(db))
