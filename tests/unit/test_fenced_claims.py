"""A purchase under a superseded request fence is refused before it claims anything.

Attempt 1 of a request is paused past its lease; attempt 2 takes the key over and buys (the
ids are derived from the key, so it buys what attempt 1 meant to buy). When attempt 1 wakes
up, the fenced store refuses it at the start of its transaction (FencedOutError). Without the
fenced store attempt 1 claims the pool units again and is stopped only at the end, by the
derived hold id colliding (a ConflictError): the fence is what refuses it, and refuses it
before it locks anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from lastseat.bootstrap import build, open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import FencedOutError
from lastseat.domain.holds import PoolClaim
from lastseat.domain.inventory import build_event
from lastseat.domain.money import Money
from lastseat.service import booking
from lastseat.service.idempotency import (
    IdempotencyService,
    RequestFence,
    RequestKey,
    Started,
    fingerprint,
)
from lastseat.service.ports import Store

KEY = RequestKey("alice", "POST", "/purchases", "k-1")
PRINT = fingerprint("POST", "/purchases", b"{}")
CLAIM = PoolClaim("gig", "gig/standing", 1)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def started(keys: IdempotencyService) -> RequestFence:
    begun = keys.begin(KEY, PRINT)
    assert isinstance(begun, Started), begun
    return begun.fence


@pytest.mark.parametrize(
    "fenced_store",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.xfail(
                strict=True,
                reason="without the fenced store only a late id collision stops the dead attempt",
            ),
        ),
    ],
)
def test_a_paused_attempt_cannot_buy_after_its_request_was_taken_over(
    store: Store, monkeypatch: pytest.MonkeyPatch, fenced_store: bool
) -> None:
    if not fenced_store:
        monkeypatch.setattr(booking, "fenced", lambda inner, fence: inner)
    clock = FakeClock()
    services = build(store, "atomic", clock=clock)
    services.catalog.create_event(
        build_event("gig", "Gig", "EUR", [], [("standing", 10, Money(500, "EUR"))])
    )
    services.wallets.open_wallet("alice", "EUR")
    services.wallets.top_up("alice", Money(5_000, "EUR"))
    keys = IdempotencyService(store, clock=clock)

    first = started(keys)
    clock.advance(timedelta(seconds=31))  # attempt 1 is paused past its lease
    second = started(keys)
    services.booking.quick_buy("alice", CLAIM, second)

    with pytest.raises(FencedOutError):
        services.booking.quick_buy("alice", CLAIM, first)  # attempt 1 wakes up
    assert len(services.booking.purchases_of("alice")) == 1
