"""An `atomic` or `optimistic` quick buy holds the hot row for one flight: the claim (the
conditional or version-checked write), the sale and the COMMIT travel together.

Counted on the wire, not on a clock: libpq's protocol trace logs every message the client
sends (F) and receives (B), so each F -> B turn is one round trip. From the claim's UPDATE on,
the transaction must take exactly one: the claim, the hold, the payment, the order, the
tickets and the COMMIT in one flight, so the row lock never waits for the client. The controls
wait for the claim's answer, or send the sale one statement at a time (as before issue 9),
and must fail.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lastseat.adapters.postgres import records
from lastseat.adapters.postgres.store import PostgresStore
from lastseat.adapters.postgres.tx import PostgresTx
from lastseat.bootstrap import Services, build, open_store
from lastseat.domain.errors import InsufficientFundsError, UnavailableError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, seat_id_for
from lastseat.domain.ledger import AccountKind
from lastseat.domain.money import Money
from lastseat.service.ports import Sale

EUR = "EUR"
EVENT = "ev1"
POOL = f"{EVENT}/standing"
SEAT = seat_id_for(EVENT, "A", 1, 1)
CLAIMS: dict[str, Claim] = {"pool": PoolClaim(EVENT, POOL, 1), "seat": SeatClaim(EVENT, (SEAT,))}


@pytest.fixture(params=["atomic", "optimistic"])
def services(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[Services]:
    store = open_store(pg_dsn)
    assert isinstance(store, PostgresStore)
    built = build(store, request.param)
    built.catalog.create_event(
        build_event(
            EVENT,
            "Show",
            EUR,
            [SeatBlock("A", 1, 2, Money(1_000, EUR))],
            [("standing", 5, Money(500, EUR))],
        )
    )
    built.wallets.fund_wallets({"alice": Money(10_000, EUR), "poor": Money(1, EUR)})
    try:
        yield built
    finally:
        store.close()


class Wire:
    """The protocol trace of every write transaction's connection, in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.traced: list[PostgresTx] = []

    def turns_from_claim(self) -> int:
        """Round trips (F -> B turns) from the last claim's UPDATE to its transaction's end."""
        for tx in self.traced:
            tx._raw.pgconn.untrace()  # flushes libpq's buffered trace
        lines = self.path.read_text().splitlines()
        start = max(i for i, line in enumerate(lines) if _CLAIM.search(line))
        end = next(i for i in range(start, len(lines)) if _ENDED.search(lines[i]))
        directions = [line.split("\t")[1] for line in lines[start : end + 1]]
        return sum(1 for pair in itertools.pairwise(directions) if pair == ("F", "B"))


_CLAIM = re.compile(r"\tF\t.*UPDATE (pools|seats)( s)? SET")
_ENDED = re.compile(r"\tB\t.*CommandComplete\t \"(COMMIT|ROLLBACK)\"")


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    with tempfile.NamedTemporaryFile("w", suffix=".trace") as trace:
        found = Wire(Path(trace.name))
        opened = PostgresTx.__init__

        def traced(self: PostgresTx, *args: object, **kwargs: object) -> None:
            opened(self, *args, **kwargs)  # type: ignore[arg-type]
            self._raw.pgconn.trace(trace.fileno())
            found.traced.append(self)

        monkeypatch.setattr(PostgresTx, "__init__", traced)
        yield found


@pytest.mark.parametrize("kind", sorted(CLAIMS))
def test_after_its_claim_a_sale_takes_one_flight_with_its_commit(
    services: Services, wire: Wire, kind: str
) -> None:
    purchase = services.booking.quick_buy("alice", CLAIMS[kind])
    assert purchase.order.amount.amount_minor in (500, 1_000)
    assert wire.turns_from_claim() == 1  # [claim, sale, COMMIT]


def test_a_wallet_that_cannot_pay_aborts_the_flight_and_keeps_nothing(
    services: Services, wire: Wire
) -> None:
    with pytest.raises(InsufficientFundsError, match=r"less than 5\.00 EUR"):
        services.booking.quick_buy("poor", CLAIMS["pool"])
    assert services.booking.availability(EVENT).pools[0].available == 5
    assert services.wallets.balance("poor").amount_minor == 1
    assert not services.booking.purchases_of("poor")


def _one_by_one(self: PostgresTx, sale: Sale) -> None:
    # The sale as it was sent before: one statement, one round trip, at a time.
    conn = self._conn
    if sale.new_hold is not None:
        records.insert_hold(conn, sale.new_hold)
    self.ensure_account(sale.transfer.destination, AccountKind.REVENUE, EUR)
    self.post_transfer(sale.transfer)
    records.insert_order(conn, sale.order)
    records.insert_tickets(conn, sale.tickets)


_queued_claim = PostgresTx.claim_or_abort


def _claim_then_wait(self: PostgresTx, *args: Any, **kwargs: Any) -> None:
    # The claim as it was sent before: its answer waited for before anything else is sent.
    _queued_claim(self, *args, **kwargs)
    self.flush()


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="more than one flight")
@pytest.mark.parametrize(
    ("method", "older"), [("record_sale", _one_by_one), ("claim_or_abort", _claim_then_wait)]
)
def test_control_a_claim_answered_first_or_a_sale_sent_statement_by_statement_takes_more(
    services: Services,
    wire: Wire,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    older: Callable[..., None],
) -> None:
    monkeypatch.setattr(PostgresTx, method, older)
    services.booking.quick_buy("alice", CLAIMS["pool"])
    assert wire.turns_from_claim() == 1


def test_flights_aborted_by_taken_seats_leave_the_connection_usable(pg_dsn: str) -> None:
    # A claim that finds its seat taken aborts its flight, and the server skips what follows
    # it, the Parse of any statement psycopg chose to prepare included. With one connection,
    # every purchase after many aborted flights must still find its statements.
    store = open_store(pg_dsn, pool_size=1)
    try:
        services = build(store, "atomic")
        seats = 14
        services.catalog.create_event(
            build_event(EVENT, "Show", EUR, [SeatBlock("A", 1, seats, Money(100, EUR))], [])
        )
        buyers = {f"b{n}": Money(10_000, EUR) for n in range(2 * seats)}
        services.wallets.fund_wallets(buyers)
        for n in range(1, seats + 1):
            seat = SeatClaim(EVENT, (seat_id_for(EVENT, "A", 1, n),))
            services.booking.quick_buy(f"b{2 * n - 2}", seat)
            with pytest.raises(UnavailableError):
                services.booking.quick_buy(f"b{2 * n - 1}", seat)
        assert services.booking.availability(EVENT).seats_available == 0
        assert len(services.booking.purchases_of("b0")) == 1
    finally:
        store.close()
