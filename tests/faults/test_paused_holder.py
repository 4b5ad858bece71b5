"""A lock holder paused past its lease: SIGSTOP the holding *process*, let a second process
acquire and buy, SIGCONT. Storage must refuse the paused holder's late write (a counted
fenced-out write) and exactly one ticket must exist. With fencing switched off (a test-only
switch) the same sequence sells the seat twice, which shows the test can fail.

    holder: lock -> token t; read -> free; (SIGSTOP) ...
    rival:  ... lease ends ... lock -> token t+1; read -> free; fence t+1; write; commit
    holder: (SIGCONT) fence t -> refused: FencedOutError
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
import pytest
from fault_racers import SEAT, buy

from lastseat.adapters.locks.redis_server import ThrowawayRedis
from lastseat.adapters.locks.zookeeper_server import ThrowawayZooKeeper
from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import build, open_store
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money

LOCK_KINDS = ["redis-lock", "redlock", "zk-lock"]


@contextmanager
def lock_service(kind: str) -> Iterator[str]:
    with ExitStack() as stack:
        if kind == "redis-lock":
            yield stack.enter_context(ThrowawayRedis()).url
        elif kind == "redlock":
            yield ",".join(stack.enter_context(ThrowawayRedis()).url for _ in range(3))
        else:
            yield stack.enter_context(ThrowawayZooKeeper()).hosts


def setup_db(pg_server: ThrowawayPostgres, name: str) -> str:
    db = pg_server.create_database(name)
    store = open_store(db, safety_nets=False)  # the strategy alone must keep the invariant
    services = build(store)
    services.catalog.create_event(
        build_event("ev", "Show", "EUR", [SeatBlock("A", 1, 1, Money(1_000, "EUR"))], [])
    )
    services.wallets.fund_wallets({"holder": Money(5_000, "EUR"), "rival": Money(5_000, "EUR")})
    store.close()
    return db


def paused_holder_race(db: str, kind: str, address: str, fencing: bool) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    reached, outcome = ctx.Event(), ctx.Queue()
    resume, wake = ctx.Pipe(duplex=False)
    holder = ctx.Process(
        target=buy, args=(db, kind, address, "holder", fencing, reached, resume, outcome)
    )
    holder.start()
    assert reached.wait(60), "the holder never reached its check-to-write point"
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGSTOP)
    wake.send(True)  # takes effect only once the holder runs again
    try:
        rival = ctx.Process(
            target=buy, args=(db, kind, address, "rival", fencing, None, None, outcome)
        )
        rival.start()
        rival.join(120)  # it waits for the paused holder's lease to end, then buys
        assert rival.exitcode == 0
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    holder.join(120)
    results = {}
    for _ in range(2):
        buyer, result, fenced = outcome.get(timeout=60)
        results[buyer] = (result, fenced)
    return results


def valid_tickets(db: str) -> Counter[str]:
    store = open_store(db, create=False)
    try:
        return Counter(t.seat_id or "" for t in store.snapshot().tickets if t.status == "valid")
    finally:
        store.close()


@pytest.mark.parametrize("kind", LOCK_KINDS)
def test_a_paused_holders_late_write_is_fenced_out(pg_server: ThrowawayPostgres, kind: str) -> None:
    db = setup_db(pg_server, f"paused_{kind.replace('-', '_')}")
    with lock_service(kind) as address:
        results = paused_holder_race(db, kind, address, fencing=True)
    assert results["rival"] == ("ok", 0)
    assert results["holder"] == ("FencedOutError", 1)  # the fault happened, and was caught
    assert valid_tickets(db) == Counter({SEAT: 1})


@pytest.mark.parametrize("kind", LOCK_KINDS)
def test_without_fencing_the_paused_holder_sells_the_seat_twice(
    pg_server: ThrowawayPostgres, kind: str
) -> None:
    db = setup_db(pg_server, f"unfenced_{kind.replace('-', '_')}")
    with lock_service(kind) as address:
        results = paused_holder_race(db, kind, address, fencing=False)
    assert results["rival"][0] == results["holder"][0] == "ok"
    assert valid_tickets(db) == Counter({SEAT: 2})


def test_a_paused_advisory_lock_holder_keeps_its_lock_and_the_rival_waits(
    pg_server: ThrowawayPostgres,
) -> None:
    """`pg-advisory` is fate-shared with the transaction: pausing the holder cannot end its
    lock, so the rival queues behind it and finds the seat sold; nothing needs fencing out."""
    db = setup_db(pg_server, "paused_pg_advisory")
    ctx = multiprocessing.get_context("spawn")
    reached, outcome = ctx.Event(), ctx.Queue()
    resume, wake = ctx.Pipe(duplex=False)
    holder = ctx.Process(
        target=buy, args=(db, "pg-advisory", "", "holder", True, reached, resume, outcome)
    )
    holder.start()
    assert reached.wait(60)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGSTOP)
    wake.send(True)
    rival = ctx.Process(
        target=buy, args=(db, "pg-advisory", "", "rival", True, None, None, outcome)
    )
    try:
        rival.start()
        with psycopg.connect(db, autocommit=True) as conn:
            waiting = 0
            while waiting == 0 and rival.is_alive():  # the rival is queued on the advisory lock
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                ).fetchone()[0]
        assert waiting == 1
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    holder.join(60)
    rival.join(60)
    results = {b: (r, f) for b, r, f in (outcome.get(timeout=60) for _ in range(2))}
    assert results == {"holder": ("ok", 0), "rival": ("UnavailableError", 0)}
    assert valid_tickets(db) == Counter({SEAT: 1})
