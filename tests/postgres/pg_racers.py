"""Process entry points for the PostgreSQL races (importable by spawned children)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import build
from lastseat.domain.errors import ConflictError, UnavailableError
from lastseat.domain.holds import SeatClaim
from lastseat.service.booking import BookingService
from lastseat.service.ports import no_pause

EVENT = "race"
SEAT = "race/A/0001/0001"


def buy_the_seat(
    dsn: str, strategy: str, buyers: Sequence[str], threads: int, pause_ms: float, barrier: Any
) -> dict[str, int]:
    """Every buyer tries to quick-buy the one seat, `threads` at a time; count the outcomes."""
    store = PostgresStore(dsn, PostgresOptions(min_connections=threads, max_connections=threads))

    def pause() -> None:
        time.sleep(pause_ms / 1000)

    chosen_pause = pause if pause_ms else no_pause
    booking = build(store, strategy, allow_unsafe=strategy == "naive", pause=chosen_pause).booking
    outcomes: Counter[str] = Counter()
    mutex = threading.Lock()
    start = threading.Barrier(threads)

    def run(chunk: Sequence[str]) -> None:
        start.wait(timeout=60)
        for buyer in chunk:
            outcome = try_to_buy(booking, buyer)
            with mutex:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=run, args=(buyers[i::threads],)) for i in range(threads)]
    barrier.wait(timeout=120)  # every process is connected and ready: go
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    return dict(outcomes)


def try_to_buy(booking: BookingService, buyer: str) -> str:
    """One quick-buy attempt: ok, unavailable (sold out) or conflict (lost a retry race)."""
    try:
        booking.quick_buy(buyer, SeatClaim(EVENT, (SEAT,)))
    except UnavailableError:
        return "unavailable"
    except ConflictError:
        return "conflict"
    return "ok"
