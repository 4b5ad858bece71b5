"""Real concurrency on PostgreSQL: 4 OS processes x 6 threads (each thread its own pooled
connection) race 240 buyers for one seat, released together by a barrier.

The databases are made without the safety-net constraints, so that the strategy alone keeps
the invariant. Every guarded strategy must sell the seat exactly once and conserve money;
`naive`, with a few milliseconds between its check and its write, must sell it more than once,
which shows that this test can fail.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from pg_racers import BUYERS, EUR, PRICE, race, valid_tickets_for_the_seat

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.bootstrap import build
from lastseat.domain.errors import InsufficientFundsError
from lastseat.domain.money import Money

GUARDED = ["atomic", "row-lock", "optimistic"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", GUARDED)
def test_240_buyers_in_4_processes_racing_for_one_seat_get_exactly_one_ticket(
    pg_dsn: str, strategy: str
) -> None:
    outcomes, _, snapshot = race(pg_dsn, strategy, pause_ms=2.0)

    assert sum(outcomes.values()) == len(BUYERS)
    assert outcomes["ok"] == 1
    # Only optimistic may lose all its retries; the others never see a conflict.
    lost = {"conflict"} if strategy == "optimistic" else set()
    assert set(outcomes) <= {"ok", "unavailable", *lost}
    assert valid_tickets_for_the_seat(snapshot) == 1
    assert [o.status for o in snapshot.orders] == ["confirmed"]
    balances = Counter(a.balance_minor for a in snapshot.accounts if a.kind == "wallet")
    assert balances == Counter({2 * PRICE: len(BUYERS) - 1, PRICE: 1})
    assert sum(a.balance_minor for a in snapshot.accounts) == 0  # money is conserved


@pytest.mark.slow
def test_naive_sells_the_one_seat_more_than_once_when_check_and_write_are_apart(
    pg_dsn: str,
) -> None:
    outcomes, _, snapshot = race(pg_dsn, "naive", pause_ms=5.0)

    assert valid_tickets_for_the_seat(snapshot) > 1
    assert outcomes["ok"] == valid_tickets_for_the_seat(snapshot)
    assert sum(a.balance_minor for a in snapshot.accounts) == 0


def test_transfers_in_both_directions_at_once_never_deadlock_and_conserve_money(
    pg_dsn: str,
) -> None:
    """Locking both accounts in id order: A->B and B->A cannot wait on each other."""
    wallets = [f"w{n}" for n in range(4)]
    store = PostgresStore(pg_dsn, PostgresOptions(min_connections=8, max_connections=8))
    services = build(store)
    services.wallets.fund_wallets({w: Money(10 * PRICE, EUR) for w in wallets})
    start = threading.Barrier(8)

    def shuffle(seed: int) -> int:
        rng = random.Random(seed)
        start.wait(timeout=60)
        moved = 0
        for _ in range(150):
            payer, payee = rng.sample(wallets, 2)
            try:
                services.wallets.transfer(payer, payee, Money(rng.randint(1, 900), EUR))
                moved += 1
            except InsufficientFundsError:
                pass
        return moved

    try:
        with ThreadPoolExecutor(8) as pool:
            moved = sum(pool.map(shuffle, range(8)))  # a deadlock would raise ConflictError
        snapshot = store.snapshot()
    finally:
        store.close()
    balances = [a.balance_minor for a in snapshot.accounts if a.kind == "wallet"]
    assert sum(balances) == 40 * PRICE
    assert min(balances) >= 0
    assert moved == sum(1 for t in snapshot.transfers if t.kind == "transfer") > 0
