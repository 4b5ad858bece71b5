"""Negative controls for the hold rules on real databases: a shop's final state passes the
checker, and each hand-broken copy of it (one SQL statement) is named by the rule it breaks.

The shop is built through the services, as a server would build it, on SQLite and on
PostgreSQL: a quick buy, a hold then pay, active seat and pool holds, lapsed holds still
`active` (holds expire lazily), a released hold and a cancelled order. The breakages are the
ones issue 8 found or could have: `held` short of the active holds (the row-lock wedge), a
hold marked released whose units stayed counted, a seat left `held` by a released hold, an
active hold's seat given back or given to another hold, a sold seat whose hold is no longer
converted. `lastseat check` on a finished race's database names them too.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import LockServices, build, is_postgres, open_store
from lastseat.concurrency.row_lock import RowLockStrategy
from lastseat.domain.clock import FakeClock
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.money import Money
from lastseat.lab.checker import Verdict, check
from lastseat.service.snapshot import Snapshot

EVENT = "ev1"
POOL = f"{EVENT}/standing"
S1, S2, S3, S4, S5 = (seat_id_for(EVENT, "A", 1, n) for n in range(1, 6))
BUYERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")
SHORT = timedelta(seconds=1)


@dataclass(frozen=True)
class Shop:
    """A finished shop's database, and the ids of the holds the breakages edit."""

    db: str
    sold_seat_hold: str  # alice's quick buy of S1: converted, its order confirmed
    held_seat_hold: str  # bob's active hold on S2
    pool_hold: str  # bob's active hold of 3 units
    released_hold: str  # carol's released hold on S3

    def snapshot(self) -> Snapshot:
        store = open_store(self.db, create=False)
        try:
            return store.snapshot()
        finally:
            store.close()

    def check(self) -> Verdict:
        return check((), self.snapshot())

    def execute(self, statement: str) -> None:
        """Break the committed state by hand, outside lastseat."""
        if is_postgres(self.db):
            with psycopg.connect(self.db, autocommit=True) as conn:
                conn.execute(statement.encode())
            return
        with sqlite3.connect(self.db) as conn:
            conn.execute(statement)


@pytest.fixture
def shop(db_url: str) -> Shop:
    clock = FakeClock()
    store = open_store(db_url)
    try:
        services = build(store, "atomic", clock=clock)
        seats = [SeatBlock("A", 1, 6, Money(1_000, "EUR"))]
        services.catalog.create_event(
            build_event(EVENT, "Show", "EUR", seats, [("standing", 10, Money(500, "EUR"))])
        )
        services.wallets.fund_wallets({b: Money(100_000, "EUR") for b in BUYERS})
        booking = services.booking
        sold = booking.quick_buy("alice", SeatClaim(EVENT, (S1,))).order.hold_id
        held = booking.place_hold("bob", SeatClaim(EVENT, (S2,))).hold_id
        units = booking.place_hold("bob", PoolClaim(EVENT, POOL, 3)).hold_id
        released = booking.place_hold("carol", SeatClaim(EVENT, (S3,))).hold_id
        booking.release_hold("carol", released)
        cancelled = booking.quick_buy("dave", PoolClaim(EVENT, POOL, 2)).order.order_id
        booking.cancel_order("dave", cancelled)
        paid = booking.place_hold("erin", SeatClaim(EVENT, (S4,)), ttl=SHORT).hold_id
        booking.pay_hold("erin", paid)
        booking.place_hold("frank", SeatClaim(EVENT, (S5,)), ttl=SHORT)
        booking.place_hold("frank", PoolClaim(EVENT, POOL, 2), ttl=SHORT)
        clock.advance(2 * SHORT)  # frank's holds lapse, still `active` until someone expires them
        booking.quick_buy("gina", PoolClaim(EVENT, POOL, 1))
    finally:
        store.close()
    return Shop(db_url, sold, held, units, released)


def test_a_shop_with_active_lapsed_released_and_sold_holds_passes(shop: Shop) -> None:
    snapshot = shop.snapshot()
    (pool,) = snapshot.pools
    statuses = {s.seat_id: s.status for s in snapshot.seats}

    verdict = check((), snapshot)

    assert verdict.violations == ()
    # The rules had something to check: held units, held and sold seats, a lapsed hold.
    assert pool.held >= 3
    assert statuses[S2] == statuses[S5] == "held"
    assert statuses[S1] == statuses[S4] == "sold"


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        pytest.param("UPDATE pools SET held = held - 1", "pool_held_mismatch", id="held_short"),
        pytest.param("UPDATE pools SET held = held + 1", "pool_held_mismatch", id="held_over"),
        pytest.param(
            "UPDATE holds SET status = 'released' WHERE hold_id = '{pool_hold}'",
            "pool_held_mismatch",
            id="a_released_pool_hold_whose_units_stayed_held",
        ),
        pytest.param(
            "UPDATE seats SET status = 'held', hold_id = '{released_hold}'"
            " WHERE seat_id = '" + S3 + "'",
            "seat_hold_mismatch",
            id="a_seat_held_by_a_released_hold",
        ),
        pytest.param(
            "UPDATE seats SET status = 'available', hold_id = NULL WHERE seat_id = '" + S2 + "'",
            "seat_hold_mismatch",
            id="an_active_holds_seat_given_back",
        ),
        pytest.param(
            "UPDATE seats SET hold_id = '{sold_seat_hold}' WHERE seat_id = '" + S2 + "'",
            "seat_hold_mismatch",
            id="an_active_holds_seat_given_to_another_hold",
        ),
        pytest.param(
            "UPDATE holds SET status = 'expired' WHERE hold_id = '{sold_seat_hold}'",
            "seat_hold_mismatch",
            id="a_sold_seat_whose_hold_is_expired",
        ),
        pytest.param(
            "UPDATE holds SET status = 'active' WHERE hold_id = '{released_hold}'",
            "seat_hold_mismatch",
            id="an_active_hold_whose_seat_is_available",
        ),
    ],
)
def test_a_hand_broken_shop_is_named_by_exactly_the_broken_rule(
    shop: Shop, statement: str, kind: str
) -> None:
    shop.execute(statement.format(**vars(shop)))

    verdict = shop.check()

    assert verdict.kinds() == {kind}, verdict.violations
    assert len(verdict.violations) == 1


def test_a_released_hold_left_active_is_named_with_its_pool_and_seat(shop: Shop) -> None:
    shop.execute(f"UPDATE holds SET status = 'active' WHERE hold_id = '{shop.pool_hold}'")
    shop.execute(f"UPDATE pools SET held = held - 3 WHERE pool_id = '{POOL}'")
    shop.execute(f"UPDATE seats SET status = 'available', hold_id = NULL WHERE seat_id = '{S2}'")

    details = [v.detail for v in shop.check().violations]

    assert any(POOL in d and "active holds hold" in d for d in details), details
    assert any(S2 in d and shop.held_seat_hold in d for d in details), details


# --- the `lastseat check` command on a finished race ------------------------------------------


def lastseat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lastseat", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_lastseat_check_names_a_held_counter_broken_after_a_race(tmp_path: Path) -> None:
    db, history = tmp_path / "run.db", tmp_path / "run.jsonl"
    done = lastseat(
        "race", "--strategy", "atomic", "--scenario", "ga", "--buyers", "40", "--processes", "2",
        "--db", str(db), "--history", str(history), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["verdict_ok"], row["violations"]
    with sqlite3.connect(db) as conn:  # units counted held that no hold holds
        conn.execute("UPDATE pools SET held = held + 1")

    rechecked = lastseat("check", str(history), "--json")
    text = lastseat("check", str(history))

    assert rechecked.returncode == text.returncode == 1
    kinds = [v["kind"] for v in json.loads(rechecked.stdout)["violations"]]
    assert kinds == ["pool_held_mismatch"]
    assert "pool_held_mismatch: pool race/" in text.stdout


# --- the checker on issue 8's real interleaving ----------------------------------------------


def _lapsed_hold_harness() -> ModuleType:
    """The lead's barrier-forced lapsed-hold race (tests/contract/test_lapsed_hold_race.py)."""
    contract = str(Path(__file__).resolve().parents[1] / "contract")
    if contract not in sys.path:
        sys.path.insert(0, contract)
    return importlib.import_module("test_lapsed_hold_race")


@pytest.mark.parametrize(
    ("claims", "kinds"),
    [
        pytest.param(("pool", 2, 1), {"pool_held_mismatch"}, id="pool"),
        # B overwrote the seat of A's lapsed, still active hold: two live holds on one seat.
        pytest.param(("seat", 0, 0), {"seat_sold_twice"}, id="seat"),
    ],
)
def test_the_checker_names_what_row_lock_looking_before_its_wait_did(
    pg_server: ThrowawayPostgres,
    monkeypatch: pytest.MonkeyPatch,
    claims: tuple[str, int, int],
    kinds: set[str],
) -> None:
    harness = _lapsed_hold_harness()
    monkeypatch.setattr(RowLockStrategy, "_under_lock", harness._look_before_the_wait)
    db = pg_server.create_database(f"checker_lapsed_{claims[0]}_{time.monotonic_ns()}")
    harness.setup(db)
    kind, a_units, b_units = claims
    if kind == "pool":
        a_claim: Claim = PoolClaim("ev", harness.POOL, a_units)
        b_claim: Claim = PoolClaim("ev", harness.POOL, b_units)
    else:
        a_claim = b_claim = SeatClaim("ev", (harness.SEAT,))

    staged = harness.stage(db, "row-lock", LockServices(), a_claim, b_claim)

    assert staged.queued, "B never queued behind A's lock: the interleaving was not forced"
    verdict = check((), harness.snapshot(db))
    assert verdict.kinds() == kinds, verdict.violations
