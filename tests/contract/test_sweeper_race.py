"""Many processes sweeping lapsed holds at once: each hold is expired, and released, once."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

from racers import sweep_at

from lastseat.bootstrap import build, open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.holds import PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money

START = datetime(2026, 6, 1, tzinfo=UTC)


def test_four_sweeper_processes_expire_each_lapsed_hold_exactly_once(db_url: str) -> None:
    store = open_store(db_url)
    services = build(store, clock=FakeClock(START))
    event = build_event(
        "ev",
        "Show",
        "EUR",
        [SeatBlock("A", 2, 20, Money(100, "EUR"))],
        [("standing", 100, Money(50, "EUR"))],
    )
    services.catalog.create_event(event)
    services.wallets.fund_wallets({f"b{i}": Money(10_000, "EUR") for i in range(40)})
    for i, seat in enumerate(event.seats):
        services.booking.place_hold(
            f"b{i}", SeatClaim("ev", (seat.seat_id,)), ttl=timedelta(minutes=1)
        )
        services.booking.place_hold(
            f"b{i}", PoolClaim("ev", "ev/standing", 2), ttl=timedelta(minutes=1)
        )
    store.close()

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(4)
    later = (START + timedelta(minutes=5)).isoformat()
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        expired = sum(
            f.result() for f in [pool.submit(sweep_at, db_url, later, barrier) for _ in range(4)]
        )

    snapshot = open_store(db_url, create=False).snapshot()
    assert expired == 80  # 40 seat holds + 40 pool holds, across all sweepers
    assert {h.status for h in snapshot.holds} == {"expired"}
    assert all(s.status == "available" and s.hold_id is None for s in snapshot.seats)
    assert snapshot.pools[0].held == 0  # released once each: a double release would go negative
