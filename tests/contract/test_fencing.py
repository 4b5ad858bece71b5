"""Storage-side fencing on both backends: a write carrying an older token than one already
seen for its resource is refused, and refusing it leaves nothing of its transaction behind."""

from __future__ import annotations

import pytest

from lastseat.bootstrap import open_store
from lastseat.domain.errors import FencedOutError
from lastseat.domain.holds import SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event
from lastseat.domain.money import Money
from lastseat.service.ports import Stage

SEAT = "ev/A/0001/0001"


def test_a_delayed_write_with_an_older_token_is_refused(db_url: str) -> None:
    store = open_store(db_url)
    with store.write() as tx:
        tx.check_fence(SEAT, 34)
    with store.write() as tx:
        tx.check_fence(SEAT, 34)  # the same holder writing again is fine
    with pytest.raises(FencedOutError), store.write() as tx:
        tx.check_fence(SEAT, 33)
    with store.write() as tx:
        tx.check_fence("ev/A/0001/0002", 1)  # tokens are per resource
        tx.check_fence(SEAT, 35)
    store.close()


def test_a_fenced_out_write_leaves_nothing_of_its_transaction(db_url: str) -> None:
    store = open_store(db_url)
    with store.write() as tx:
        tx.insert_event(
            build_event("ev", "Show", "EUR", [SeatBlock("A", 1, 1, Money(100, "EUR"))], [])
        )
        tx.check_fence(SEAT, 10)

    def late_write() -> None:
        with store.write() as tx:
            tx.write_seats(SeatClaim("ev", (SEAT,)).seat_ids, "hld_late", Stage.SOLD)
            tx.check_fence(SEAT, 9)

    with pytest.raises(FencedOutError):
        late_write()
    seat = next(s for s in store.snapshot().seats if s.seat_id == SEAT)
    assert seat.status == "available" and seat.hold_id is None
    store.close()
