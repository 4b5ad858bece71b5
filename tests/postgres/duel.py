"""Two buyers, two app servers (two stores, two pools), one PostgreSQL: a forced interleaving.

Each buyer's pause hook (the strategy's check-to-write point) is a `Gate` that stops it the
first time it gets there until the test opens it. A duel runs:

1. A goes until its gate (it has checked, and holds whatever locks its strategy takes).
2. B goes until it is as far as it can get while A waits: at its own gate (it checked too),
   blocked on one of A's locks (seen in pg_stat_activity), or finished (it failed fast).
3. A's gate opens; A writes, pays and commits.
4. B's gate opens; B writes (or re-checks, or retries) and ends.

So whatever a strategy lets B see before A's commit, B sees it, and B's write comes after
A's commit: the lost-update interleaving of the article, forced without sleeps.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import Services, build
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.errors import LastseatError
from lastseat.domain.holds import ClaimRequest, PoolClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.service.ports import Store
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics

WAIT_LIMIT_S = 30.0
EVENT = "ev"
SECTION = "A"
POOL = f"{EVENT}/standing"
EUR = "EUR"
SEAT_PRICE = 1_000
UNIT_PRICE = 500
NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0)
# How far B must get before A may go on: "ahead" = at its gate, blocked or done; "done" = done.
Until = Literal["ahead", "done"]


def open_shop(dsn: str, seats: int = 1, capacity: int = 1, sold_units: int = 0) -> None:
    """An event with `seats` seats in section A and a pool; wallets for buyers a and b."""
    store = PostgresStore(dsn, PostgresOptions(safety_nets=False, max_connections=1))
    try:
        services = build(store)
        services.catalog.create_event(
            build_event(
                EVENT,
                "Show",
                EUR,
                [SeatBlock(SECTION, 1, seats, Money(SEAT_PRICE, EUR))],
                [("standing", capacity, Money(UNIT_PRICE, EUR))],
            )
        )
        services.wallets.fund_wallets({n: Money(50_000, EUR) for n in ("a", "b", "early")})
        if sold_units:
            services.booking.quick_buy("early", PoolClaim(EVENT, POOL, sold_units))
    finally:
        store.close()


def someone_waits_for_a_lock(dsn: str) -> bool:
    """True if a session of this database is blocked on a lock right now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@dataclass
class Gate:
    """A pause hook that holds its buyer at the first check-to-write point until opened."""

    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls > 1:
            return  # a retry: the interleaving was forced once, let it run
        self.arrived.set()
        if not self.opened.wait(WAIT_LIMIT_S):
            raise AssertionError("the test never opened the gate")


@dataclass
class Buyer:
    """One buyer on its own store, running one purchase in a thread."""

    name: str
    services: Services
    gate: Gate
    done: threading.Event = field(default_factory=threading.Event)
    outcome: object = None

    def start(self, claim: ClaimRequest) -> None:
        def run() -> None:
            try:
                self.outcome = self.services.booking.quick_buy(self.name, claim)
            except LastseatError as exc:
                self.outcome = exc
            finally:
                self.done.set()

        threading.Thread(target=run, daemon=True).start()

    @property
    def stats(self) -> StrategyStatistics:
        return self.services.booking.strategy.statistics()

    @property
    def failed(self) -> bool:
        return isinstance(self.outcome, LastseatError)


@dataclass
class Duel:
    """What happened: both outcomes, how far B got while A waited, and the final state."""

    a: Buyer
    b: Buyer
    b_checked_before_a_wrote: bool
    b_was_blocked: bool
    b_done_before_a_went_on: bool
    snapshot: Snapshot

    def errors(self) -> Counter[type]:
        return Counter(type(x.outcome) for x in (self.a, self.b) if x.failed)

    def valid_tickets(self) -> int:
        return sum(1 for t in self.snapshot.tickets if t.status == "valid")


def duel(
    dsn: str,
    strategy: str,
    claim: ClaimRequest,
    *,
    until: Until = "ahead",
    b_lock_timeout_ms: int = 20_000,
    wrap: Callable[[PostgresStore], Store] = lambda store: store,
) -> Duel:
    """Run the forced interleaving of the module docstring; `wrap` may disguise B's store."""
    stores = [
        PostgresStore(dsn, PostgresOptions(max_connections=2, lock_timeout_ms=timeout))
        for timeout in (20_000, b_lock_timeout_ms)
    ]
    try:
        a, b = (
            Buyer(
                name,
                build(wrap(store), strategy, allow_unsafe=True, pause=gate, retry=NO_WAIT),
                gate,
            )
            for name, store, gate in zip("ab", stores, (Gate(), Gate()), strict=True)
        )
        a.start(claim)
        _wait_for(lambda: a.gate.arrived.is_set() or a.done.is_set(), "A never reached its gate")
        b.start(claim)
        blocked = _b_gets_ahead(dsn, b, until)
        b_done_early = b.done.is_set()
        checked = b.gate.arrived.is_set()
        a.gate.opened.set()
        _wait_for(a.done.is_set, "A never finished")
        b.gate.opened.set()
        _wait_for(b.done.is_set, "B never finished")
        return Duel(a, b, checked, blocked, b_done_early, stores[0].snapshot())
    finally:
        for store in stores:
            store.close()


def _b_gets_ahead(dsn: str, b: Buyer, until: Until) -> bool:
    """Wait until B is as far as it can get while A waits; True if B is blocked on a lock."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        if b.done.is_set():
            return False
        if until == "ahead" and b.gate.arrived.is_set():
            return False
        if until == "ahead" and someone_waits_for_a_lock(dsn):
            return True
        time.sleep(0.002)  # polling an observation; the ordering itself is forced by the gates
    raise AssertionError(f"B never got {until} while A waited")


def _wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.002)
