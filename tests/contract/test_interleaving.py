"""The last-seat interleaving, forced with a barrier at the strategy's check-to-write point.

Two buyers, two stores (two connections, as two app servers would have), one seat. Each
buyer's pause hook waits on a shared barrier between its check and its write, which forces
the interleaving of the article whenever the strategy lets both buyers get that far:

    A: check -> free    B: check -> free    (barrier)    A: write    B: write

`naive` reaches the barrier twice and sells the seat twice. `optimistic` reaches it twice too,
but its version check turns the second write into a retry that finds the seat sold. `atomic`,
`row-lock` and `batched` (two stores: two batches) never let the second buyer reach its check
while the first holds the lock, so the barrier is broken (after a timeout the waiting buyer
goes on alone) and the seat sells once.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

from lastseat.bootstrap import Services, build, open_store
from lastseat.domain.errors import ConflictError, LastseatError, UnavailableError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money

BARRIER_TIMEOUT_S = 1.0
SEAT = "ev/A/0001/0001"
POOL = "ev/standing"


@dataclass
class Rendezvous:
    """The pause hook: wait for the other buyer between check and write, if it can come."""

    barrier: threading.Barrier = field(
        default_factory=lambda: threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    )
    reached: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> None:
        with self.lock:
            self.reached += 1
        # A broken barrier means the other buyer is blocked behind our lock: the interleaving
        # is impossible, so go on alone.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()

    @property
    def met(self) -> bool:
        return not self.barrier.broken


def setup(db: str, safety_nets: bool) -> None:
    store = open_store(db, safety_nets=safety_nets)
    services = build(store)
    services.catalog.create_event(
        build_event(
            "ev",
            "Show",
            "EUR",
            [SeatBlock("A", 1, 1, Money(1_000, "EUR"))],
            [("standing", 1, Money(500, "EUR"))],
        )
    )
    services.wallets.fund_wallets({"a": Money(5_000, "EUR"), "b": Money(5_000, "EUR")})
    store.close()


def race_two(
    db: str, strategy: str, claim: Claim
) -> tuple[Rendezvous, dict[str, object], list[Services]]:
    hook = Rendezvous()
    buyers = [
        build(open_store(db, create=False), strategy, allow_unsafe=True, pause=hook)
        for _ in range(2)
    ]
    outcomes: dict[str, object] = {}

    def buy(name: str, services: Services) -> None:
        try:
            outcomes[name] = services.booking.quick_buy(name, claim)
        except LastseatError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=buy, args=(n, s)) for n, s in zip("ab", buyers, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return hook, outcomes, buyers


def valid_tickets(db: str) -> Counter[str]:
    snapshot = open_store(db, create=False).snapshot()
    return Counter(t.seat_id or t.pool_id or "" for t in snapshot.tickets if t.status == "valid")


def pool_sold(db: str) -> int:
    return open_store(db, create=False).snapshot().pools[0].sold


@pytest.mark.parametrize(
    "claim", [SeatClaim("ev", (SEAT,)), PoolClaim("ev", POOL, 1)], ids=["seat", "pool"]
)
def test_naive_lets_both_buyers_pass_the_check_and_sells_twice(db_url: str, claim: Claim) -> None:
    setup(db_url, safety_nets=False)
    hook, outcomes, _ = race_two(db_url, "naive", claim)
    assert hook.met and hook.reached == 2
    assert sum(valid_tickets(db_url).values()) == 2
    assert not any(isinstance(o, LastseatError) for o in outcomes.values())
    if isinstance(claim, PoolClaim):
        assert pool_sold(db_url) == 1  # the lost update: two tickets, the counter says one


def test_with_the_schema_safety_net_naive_fails_the_second_buyer_late_instead(
    db_url: str,
) -> None:
    setup(db_url, safety_nets=True)
    hook, outcomes, _ = race_two(db_url, "naive", SeatClaim("ev", (SEAT,)))
    assert hook.met  # both passed the check ...
    assert valid_tickets(db_url) == Counter({SEAT: 1})  # ... the unique index stopped one
    assert sum(isinstance(o, ConflictError) for o in outcomes.values()) == 1


@pytest.mark.parametrize(
    "claim", [SeatClaim("ev", (SEAT,)), PoolClaim("ev", POOL, 1)], ids=["seat", "pool"]
)
def test_optimistic_passes_both_checks_but_only_one_version_checked_write(
    db_url: str, claim: Claim
) -> None:
    setup(db_url, safety_nets=False)
    hook, outcomes, buyers = race_two(db_url, "optimistic", claim)
    assert hook.met and hook.reached == 2  # the same interleaving as naive ...
    assert sum(valid_tickets(db_url).values()) == 1  # ... but one sale
    assert sum(isinstance(o, UnavailableError) for o in outcomes.values()) == 1
    assert sum(b.booking.strategy.statistics().conflicts for b in buyers) == 1


@pytest.mark.parametrize("strategy", ["atomic", "row-lock", "batched"])
@pytest.mark.parametrize(
    "claim", [SeatClaim("ev", (SEAT,)), PoolClaim("ev", POOL, 1)], ids=["seat", "pool"]
)
def test_locking_strategies_make_the_interleaving_impossible(
    db_url: str, strategy: str, claim: Claim
) -> None:
    setup(db_url, safety_nets=False)
    hook, outcomes, _ = race_two(db_url, strategy, claim)
    assert not hook.met and hook.reached == 1  # the second buyer never got to its check
    assert sum(valid_tickets(db_url).values()) == 1
    assert sum(isinstance(o, UnavailableError) for o in outcomes.values()) == 1
