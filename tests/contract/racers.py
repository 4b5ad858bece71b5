"""Process entry points for the wallet race (importable by spawned children)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from lastseat.bootstrap import build, open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import InsufficientFundsError
from lastseat.domain.money import Money


def transfer_randomly(db: str, buyers: list[str], rounds: int, seed: int, barrier: Any) -> int:
    """Move random amounts between random wallets; return how many transfers succeeded."""
    store = open_store(db, create=False)
    wallets = build(store).wallets
    rng = random.Random(seed)
    barrier.wait(timeout=60)
    moved = 0
    for _ in range(rounds):
        payer, payee = rng.sample(buyers, 2)
        try:
            wallets.transfer(payer, payee, Money(rng.randint(1, 400), "EUR"))
            moved += 1
        except InsufficientFundsError:
            pass
    store.close()
    return moved


def sweep_at(db: str, now_iso: str, barrier: Any) -> int:
    """Run the hold sweeper once at a fixed time; return how many holds this process expired."""
    store = open_store(db, create=False)
    booking = build(store, clock=FakeClock(datetime.fromisoformat(now_iso))).booking
    barrier.wait(timeout=60)
    expired = 0
    while True:
        batch = booking.expire_lapsed_holds(limit=7)
        if not batch:
            break
        expired += batch
    store.close()
    return expired
