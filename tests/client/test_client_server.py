"""The client against a real server process: set-up, buying, holds, cancels, and a rush."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from api_helpers import ADMIN_KEY, Server, seat, uid

from lastseat.client import (
    AsyncLastseatClient,
    ClientStatistics,
    LastseatClient,
    NotFoundError,
    Pool,
    Result,
    SeatBlock,
    UnauthorizedError,
    UnavailableError,
)


@pytest.fixture
def admin(client_server: Server) -> Iterator[LastseatClient]:
    """A client with the admin key."""
    with LastseatClient(client_server.url, admin_key=ADMIN_KEY) as client:
        yield client


def new_event(client: LastseatClient, *, seats_per_row: int = 3, capacity: int = 10) -> str:
    event_id = uid("ev")
    created = client.create_event(
        event_id,
        "Client night",
        "EUR",
        seat_blocks=[SeatBlock("A", 1, seats_per_row, 1000)],
        pools=[Pool("standing", capacity, 500)],
    )
    assert created.status == 201
    assert created.body == {"event_id": event_id, "seats": seats_per_row, "pools": 1}
    return event_id


def new_buyer(client: LastseatClient, funds_minor: int = 10_000) -> LastseatClient:
    buyer_id = uid("buyer")
    token = client.create_buyer(buyer_id, "EUR").body["token"]
    assert client.top_up(buyer_id, funds_minor).body["balance_minor"] == funds_minor
    return client.with_token(token)


def settled(client: LastseatClient, result: Result) -> Result:
    """The final order of a purchase: as answered, or polled while payment is pending."""
    if result.status == 202:
        assert result.order_id is not None
        return client.wait_for_order(result.order_id, 20.0)
    return result


def test_a_buyer_buys_a_seat_and_a_rival_is_refused_at_once_without_a_retry(
    admin: LastseatClient,
) -> None:
    event_id = new_event(admin)
    alice, bob = new_buyer(admin), new_buyer(admin)

    bought = settled(alice, alice.purchase(event_id, seat_ids=[seat(event_id)]))
    retries_before = admin.statistics().retries
    with pytest.raises(UnavailableError) as refused:
        bob.purchase(event_id, seat_ids=[seat(event_id)])

    assert bought.order_status == "confirmed"
    assert bought.idempotency_key is not None
    assert refused.value.attempts == 1
    assert refused.value.status == 409
    assert admin.statistics().retries == retries_before
    assert [t["seat_id"] for t in alice.tickets().body["tickets"]] == [seat(event_id)]
    assert bob.tickets().body["tickets"] == []
    assert bob.wallet().body["balance_minor"] == 10_000
    assert admin.availability(event_id).body["seats_available"] == 2


def test_a_hold_is_paid_then_the_order_cancelled_and_a_second_cancel_answers_refunded(
    admin: LastseatClient,
) -> None:
    event_id = new_event(admin)
    buyer = new_buyer(admin)

    hold = buyer.place_hold(event_id, pool="standing", quantity=2, ttl_s=60)
    paid = settled(buyer, buyer.pay_hold(hold.body["hold_id"]))
    order_id = paid.order_id
    assert order_id is not None
    listed = [o["order"]["order_id"] for o in buyer.orders().body["orders"]]
    cancelled = buyer.cancel_order(order_id)
    again = buyer.cancel_order(order_id)  # a new key: the order as it stands, nothing twice

    assert hold.status == 201
    assert hold.body["quantity"] == 2
    assert paid.order_status == "confirmed"
    assert len(paid.body["tickets"]) == 2
    assert listed == [order_id]
    assert cancelled.order_status == "refunded"
    assert buyer.order(order_id).order_status == "refunded"
    assert (again.status, again.order_status) == (200, "refunded")
    assert buyer.wallet().body["balance_minor"] == 10_000


def test_a_released_hold_gives_its_seat_back(admin: LastseatClient) -> None:
    event_id = new_event(admin, seats_per_row=1)
    buyer = new_buyer(admin)

    hold = buyer.place_hold(event_id, section="A", quantity=1)
    assert admin.availability(event_id).body["seats_available"] == 0
    released = buyer.release_hold(hold.body["hold_id"])

    assert released.body["status"] == "released"
    assert admin.availability(event_id).body["seats_available"] == 1


def test_problems_of_a_real_server_map_to_their_error_classes(
    admin: LastseatClient, client_server: Server
) -> None:
    with pytest.raises(NotFoundError):
        admin.availability(uid("missing"))
    stranger = LastseatClient(client_server.url, token="not-a-token")
    with stranger, pytest.raises(UnauthorizedError) as raised:
        stranger.orders()
    assert raised.value.attempts == 1
    assert raised.value.type == "https://lastseat.dev/problems/unauthorized"


SEATS = 3
RIVALS = 50


def test_a_rush_of_concurrent_async_purchases_sells_each_seat_exactly_once(
    admin: LastseatClient, client_server: Server
) -> None:
    event_id = new_event(admin, seats_per_row=SEATS)
    tokens = [admin.create_buyer(uid("rush"), "EUR").body["token"] for _ in range(RIVALS)]
    for token in tokens:
        buyer_id = token.split(".")[0]
        admin.top_up(buyer_id, 5_000)

    async def rush() -> tuple[list[Result | BaseException], ClientStatistics]:
        async with AsyncLastseatClient(client_server.url, timeout_s=30.0) as client:
            buyers = [client.with_token(token) for token in tokens]
            outcomes = await asyncio.gather(
                *(
                    buyer.purchase(event_id, seat_ids=[seat(event_id, 1, 1 + i % SEATS)])
                    for i, buyer in enumerate(buyers)
                ),
                return_exceptions=True,
            )
            return outcomes, client.statistics()

    outcomes, stats = asyncio.run(rush())

    sold = [o for o in outcomes if isinstance(o, Result)]
    refused = [o for o in outcomes if isinstance(o, UnavailableError)]
    assert len(sold) == SEATS, outcomes
    assert len(refused) == RIVALS - SEATS, [o for o in outcomes if not isinstance(o, Result)]
    assert all(error.attempts == 1 for error in refused)
    seats_sold = sorted(t["seat_id"] for r in sold for t in r.body["tickets"])
    assert seats_sold == [seat(event_id, 1, n) for n in range(1, SEATS + 1)]
    assert admin.availability(event_id).body["seats_available"] == 0
    assert stats.calls == RIVALS
    assert stats.requests == RIVALS + stats.retries
