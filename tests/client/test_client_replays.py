"""Idempotency end to end: a lost answer is retried with the same key and replayed, not rebought.

These need the server's Idempotency-Key support (replays with `Idempotent-Replayed: true`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import ADMIN_KEY, Api, Server, seat, uid

from lastseat.client import IdempotencyKeyReusedError, LastseatClient, SeatBlock, UnavailableError


class LosesFirstAnswer(httpx.BaseTransport):
    """Delivers the first POST to the server, then drops its answer (a connection reset)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and self.lost == 0:
            response.read()
            response.close()
            self.lost += 1
            raise httpx.ReadError("answer lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def admin(client_server: Server) -> Iterator[LastseatClient]:
    """A client with the admin key."""
    with LastseatClient(client_server.url, admin_key=ADMIN_KEY) as client:
        yield client


def funded_buyer(admin: LastseatClient) -> tuple[str, str]:
    buyer_id = uid("buyer")
    token = admin.create_buyer(buyer_id, "EUR").body["token"]
    admin.top_up(buyer_id, 10_000)
    return buyer_id, token


def test_a_purchase_whose_answer_was_lost_is_replayed_on_retry_and_charged_once(
    admin: LastseatClient, client_server: Server
) -> None:
    event_id = uid("ev")
    admin.create_event(event_id, "Replay night", "EUR", seat_blocks=[SeatBlock("A", 1, 2, 1000)])
    _, token = funded_buyer(admin)
    transport = LosesFirstAnswer()

    with LastseatClient(client_server.url, token=token, transport=transport) as buyer:
        result = buyer.purchase(event_id, seat_ids=[seat(event_id)])
        orders = buyer.orders().body["orders"]
        balance = buyer.wallet().body["balance_minor"]
        stats = buyer.statistics()

    assert transport.lost == 1
    assert result.status == 201
    assert result.attempts == 2
    assert result.replayed
    assert [o["order"]["order_id"] for o in orders] == [result.order_id]
    assert balance == 10_000 - 1000
    assert (stats.transport_errors, stats.retries, stats.replays) == (1, 1, 1)


def test_the_same_key_replays_the_same_answer_and_a_different_body_is_refused(
    admin: LastseatClient,
) -> None:
    event_id = uid("ev")
    admin.create_event(event_id, "Replay night", "EUR", seat_blocks=[SeatBlock("A", 1, 2, 1000)])
    _, token = funded_buyer(admin)
    buyer = admin.with_token(token)
    key = str(uuid.uuid4())

    first = buyer.purchase(event_id, seat_ids=[seat(event_id)], idempotency_key=key)
    again = buyer.purchase(event_id, seat_ids=[seat(event_id)], idempotency_key=key)
    with pytest.raises(IdempotencyKeyReusedError) as reused:
        buyer.purchase(event_id, seat_ids=[seat(event_id, 1, 2)], idempotency_key=key)

    assert (first.replayed, again.replayed) == (False, True)
    assert (again.status, again.body, again.idempotency_key) == (first.status, first.body, key)
    assert reused.value.attempts == 1
    assert reused.value.idempotency_key == key


def test_a_refusal_answered_from_the_key_store_says_it_is_a_replay(
    client_server: Server,
) -> None:
    api = Api(client_server)
    event_id = api.event(rows=1, seats_per_row=1)
    _, winner = api.buyer()
    _, loser = api.buyer()
    api.buy(winner, {"event_id": event_id, "seat_ids": [seat(event_id)]})
    with LastseatClient(client_server.url, token=loser["Authorization"].split()[1]) as client:
        errors = []
        for _ in range(2):
            with pytest.raises(UnavailableError) as refused:
                client.purchase(event_id, seat_ids=[seat(event_id)], idempotency_key="same-key")
            errors.append(refused.value)
    assert [e.replayed for e in errors] == [False, True]
    assert errors[0].problem == errors[1].problem
    api.close()
