"""The bank-transfer race: concurrent transfers between the same wallets, in 4 processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from racers import transfer_randomly

from lastseat.bootstrap import build, open_store
from lastseat.domain.money import Money

BUYERS = [f"b{i}" for i in range(5)]


def test_concurrent_transfers_never_create_or_lose_money_or_go_negative(db_url: str) -> None:
    store = open_store(db_url)
    build(store).wallets.fund_wallets({b: Money(1_000, "EUR") for b in BUYERS})
    store.close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(4)
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [
            pool.submit(transfer_randomly, db_url, BUYERS, 150, seed, barrier) for seed in range(4)
        ]
        moved = sum(f.result() for f in futures)
    snapshot = open_store(db_url, create=False).snapshot()
    wallets = [a for a in snapshot.accounts if a.kind == "wallet"]
    assert sum(a.balance_minor for a in wallets) == 5_000
    assert all(a.balance_minor >= 0 for a in wallets)
    transfers = [t for t in snapshot.transfers if t.kind == "transfer"]
    assert len(transfers) == moved > 0
    for account in snapshot.accounts:
        entries = sum(
            e.amount_minor for e in snapshot.entries if e.account_id == account.account_id
        )
        assert entries == account.balance_minor
