"""Process entry points for the PostgreSQL races (importable by spawned children), and the
race driver that starts them."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import build, open_store
from lastseat.domain.errors import ConflictError, UnavailableError
from lastseat.domain.holds import ClaimRequest, SeatClaim, SectionClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.service.booking import BookingService
from lastseat.service.ports import no_pause
from lastseat.service.snapshot import Snapshot

EVENT = "race"
SECTION = "A"
SEAT = "race/A/0001/0001"
PROCESSES = 4
THREADS = 6
BUYERS = [f"buyer{n:03d}" for n in range(240)]
PRICE = 1_000
EUR = "EUR"
STATS = "stats."  # outcome keys that carry strategy counters, not outcomes


def race(
    dsn: str, strategy: str, pause_ms: float, *, best_available: bool = False
) -> tuple[Counter[str], Counter[str], Snapshot]:
    """Race every buyer for the one seat from 4 processes; (outcomes, counters, snapshot).

    The database is made without the safety-net constraints, so that the strategy alone keeps
    the invariant. `best_available` asks for "any 1 seat of section A" instead of the seat.
    """
    store = open_store(dsn, safety_nets=False)
    services = build(store)
    seats = [SeatBlock(SECTION, 1, 1, Money(PRICE, EUR))]
    services.catalog.create_event(build_event(EVENT, "Last seat", EUR, seats, []))
    services.wallets.fund_wallets({b: Money(2 * PRICE, EUR) for b in BUYERS})
    store.close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=ctx) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(
                buy_the_seat,
                dsn,
                strategy,
                BUYERS[i::PROCESSES],
                THREADS,
                pause_ms,
                barrier,
                best_available,
            )
            for i in range(PROCESSES)
        ]
        counts = sum((Counter(f.result()) for f in futures), Counter[str]())
    outcomes = Counter({k: v for k, v in counts.items() if not k.startswith(STATS)})
    stats = Counter({k.removeprefix(STATS): v for k, v in counts.items() if k.startswith(STATS)})
    store = open_store(dsn)
    try:
        return outcomes, stats, store.snapshot()
    finally:
        store.close()


def valid_tickets_for_the_seat(snapshot: Snapshot) -> int:
    """Valid tickets issued for the one seat."""
    return sum(1 for t in snapshot.tickets if t.seat_id == SEAT and t.status == "valid")


def buy_the_seat(
    dsn: str,
    strategy: str,
    buyers: Sequence[str],
    threads: int,
    pause_ms: float,
    barrier: Any,
    best_available: bool = False,
) -> dict[str, int]:
    """Every buyer tries to quick-buy the one seat, `threads` at a time; count the outcomes."""
    store = PostgresStore(dsn, PostgresOptions(min_connections=threads, max_connections=threads))

    def pause() -> None:
        time.sleep(pause_ms / 1000)

    chosen_pause = pause if pause_ms else no_pause
    booking = build(store, strategy, allow_unsafe=strategy == "naive", pause=chosen_pause).booking
    claim: ClaimRequest = (
        SectionClaim(EVENT, SECTION, 1) if best_available else SeatClaim(EVENT, (SEAT,))
    )
    outcomes: Counter[str] = Counter()
    mutex = threading.Lock()
    start = threading.Barrier(threads)

    def run(chunk: Sequence[str]) -> None:
        start.wait(timeout=60)
        for buyer in chunk:
            outcome = try_to_buy(booking, buyer, claim)
            with mutex:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=run, args=(buyers[i::threads],)) for i in range(threads)]
    barrier.wait(timeout=120)  # every process is connected and ready: go
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    counters = booking.strategy.statistics().as_dict()
    return {**outcomes, **{f"{STATS}{k}": v for k, v in counters.items()}}


def try_to_buy(booking: BookingService, buyer: str, claim: ClaimRequest) -> str:
    """One quick-buy attempt: ok, unavailable (sold out) or conflict (lost a retry race)."""
    try:
        booking.quick_buy(buyer, claim)
    except UnavailableError:
        return "unavailable"
    except ConflictError:
        return "conflict"
    return "ok"
