"""Every route's happy path, through a real server process, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from api_helpers import ADMIN, Api, assert_problem, seat, uid


def test_health_and_readiness_answer_ok(api: Api) -> None:
    assert api.http.get("/health").json() == {"status": "ok"}
    ready = api.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


def test_an_admin_creates_an_event_and_anyone_reads_its_availability_and_seat_map(
    api: Api,
) -> None:
    event_id = uid("ev")
    created = api.http.post(
        "/events",
        headers=ADMIN,
        json={
            "event_id": event_id,
            "name": "Opening night",
            "currency": "EUR",
            "seat_blocks": [
                {"section": "A", "rows": 2, "seats_per_row": 3, "price_minor": 5000},
                {"section": "B", "rows": 1, "seats_per_row": 2, "price_minor": 3000},
            ],
            "pools": [{"name": "standing", "capacity": 100, "price_minor": 2500}],
        },
    )
    assert created.status_code == 201
    assert created.json() == {"event_id": event_id, "seats": 8, "pools": 1}

    event = api.http.get(f"/events/{event_id}").json()
    assert event == {
        "event_id": event_id,
        "name": "Opening night",
        "seats_available": 8,
        "seats_total": 8,
        "pools": [
            {
                "pool_id": f"{event_id}/standing",
                "name": "standing",
                "capacity": 100,
                "available": 100,
                "price_minor": 2500,
            }
        ],
    }
    seat_map = api.http.get(f"/events/{event_id}/seats").json()
    assert seat_map["event_id"] == event_id
    assert len(seat_map["seats"]) == 8
    assert seat_map["seats"][0] == {
        "seat_id": seat(event_id),
        "section": "A",
        "row": 1,
        "number": 1,
        "price_minor": 5000,
        "available": True,
    }


def test_an_admin_opens_a_wallet_idempotently_and_tops_it_up(api: Api) -> None:
    buyer_id = uid("buyer")
    first = api.http.post("/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": "EUR"})
    assert first.status_code == 201
    body = first.json()
    assert body["buyer_id"] == buyer_id
    assert body["balance_minor"] == 0
    assert body["currency"] == "EUR"
    assert body["token"].startswith(f"{buyer_id}.")

    topped = api.http.post(f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": 700})
    assert topped.status_code == 200
    assert topped.json() == {"buyer_id": buyer_id, "balance_minor": 700, "currency": "EUR"}

    again = api.http.post("/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": "EUR"})
    assert again.status_code == 201
    assert again.json()["balance_minor"] == 700
    assert again.json()["token"] == body["token"]

    wallet = api.http.get("/wallet", headers={"Authorization": f"Bearer {body['token']}"})
    assert wallet.json() == {"buyer_id": buyer_id, "balance_minor": 700, "currency": "EUR"}


def test_a_quick_buy_of_seats_confirms_an_order_with_one_ticket_per_seat(api: Api) -> None:
    event_id = api.event(price_minor=1500)
    _, headers = api.buyer(10_000)
    answer = api.buy(
        headers, {"event_id": event_id, "seat_ids": [seat(event_id, 1, 2), seat(event_id)]}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    order = body["order"]
    assert answer.headers["location"] == f"/orders/{order['order_id']}"
    assert order["status"] == "confirmed"
    assert order["amount_minor"] == 3000
    assert order["currency"] == "EUR"
    assert order["quantity"] == 2
    assert order["event_id"] == event_id
    assert order["hold_id"]
    assert sorted(t["seat_id"] for t in body["tickets"]) == [seat(event_id), seat(event_id, 1, 2)]
    assert all(t["status"] == "valid" and t["pool_id"] is None for t in body["tickets"])
    assert len({t["code"] for t in body["tickets"]}) == 2
    assert api.http.get("/wallet", headers=headers).json()["balance_minor"] == 7000
    assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 4
    seats = {
        s["seat_id"]: s["available"]
        for s in api.http.get(f"/events/{event_id}/seats").json()["seats"]
    }
    assert seats[seat(event_id)] is False
    assert seats[seat(event_id, 2, 1)] is True


def test_a_best_available_buy_takes_any_free_seats_of_the_section(api: Api) -> None:
    event_id = api.event(rows=1, seats_per_row=3, price_minor=1000)
    _, headers = api.buyer(10_000)
    assert api.buy(headers, {"event_id": event_id, "seat_ids": [seat(event_id, 1, 2)]}).is_success
    answer = api.buy(headers, {"event_id": event_id, "section": "A", "quantity": 2})
    assert answer.status_code == 201, answer.text
    taken = sorted(t["seat_id"] for t in answer.json()["tickets"])
    assert taken == [seat(event_id, 1, 1), seat(event_id, 1, 3)]
    sold_out = api.buy(headers, {"event_id": event_id, "section": "A", "quantity": 1})
    assert_problem(sold_out, 409, "unavailable")
    both = api.buy(headers, {"event_id": event_id, "section": "A", "pool": "standing"})
    assert_problem(both, 422, "validation")


def test_a_quick_buy_of_pool_units_sells_that_many_tickets(api: Api) -> None:
    event_id = api.event(capacity=5, price_minor=200)
    _, headers = api.buyer(10_000)
    answer = api.buy(headers, {"event_id": event_id, "pool": "standing", "quantity": 3})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["order"]["amount_minor"] == 600
    assert [t["pool_id"] for t in body["tickets"]] == [f"{event_id}/standing"] * 3
    pools = api.http.get(f"/events/{event_id}").json()["pools"]
    assert pools[0]["available"] == 2


def test_a_hold_is_placed_read_and_paid_and_the_order_is_listed(api: Api) -> None:
    event_id = api.event(price_minor=1000)
    _, headers = api.buyer(5000)
    placed = api.http.post(
        "/holds",
        headers=headers,
        json={"event_id": event_id, "seat_ids": [seat(event_id)], "ttl_s": 600},
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["status"] == "active"
    assert hold["event_id"] == event_id
    assert hold["seat_ids"] == [seat(event_id)]
    assert hold["pool_id"] is None
    assert hold["quantity"] == 1
    assert hold["fence"] >= 1
    assert datetime.fromisoformat(hold["expires_at"]) > datetime.now(
        datetime.fromisoformat(hold["expires_at"]).tzinfo
    )
    assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 5

    assert api.http.get(f"/holds/{hold['hold_id']}", headers=headers).json() == hold

    paid = api.http.post(f"/holds/{hold['hold_id']}/order", headers=headers)
    assert paid.status_code == 201, paid.text
    order = paid.json()["order"]
    assert order["hold_id"] == hold["hold_id"]
    assert order["status"] == "confirmed"
    assert paid.headers["location"] == f"/orders/{order['order_id']}"
    assert (
        api.http.get(f"/holds/{hold['hold_id']}", headers=headers).json()["status"] == "converted"
    )

    listed = api.http.get("/orders", headers=headers).json()["orders"]
    assert [p["order"]["order_id"] for p in listed] == [order["order_id"]]
    assert api.http.get(f"/orders/{order['order_id']}", headers=headers).json() == paid.json()
    tickets = api.http.get("/tickets", headers=headers).json()["tickets"]
    assert tickets == paid.json()["tickets"]


def test_a_pool_hold_released_gives_its_units_back(api: Api) -> None:
    event_id = api.event(capacity=4)
    _, headers = api.buyer()
    placed = api.http.post(
        "/holds", headers=headers, json={"event_id": event_id, "pool": "standing", "quantity": 3}
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert (hold["pool_id"], hold["quantity"], hold["seat_ids"]) == (f"{event_id}/standing", 3, [])
    assert api.http.get(f"/events/{event_id}").json()["pools"][0]["available"] == 1

    released = api.http.delete(f"/holds/{hold['hold_id']}", headers=headers)
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    assert api.http.get(f"/events/{event_id}").json()["pools"][0]["available"] == 4


def test_cancelling_an_order_refunds_it_voids_its_tickets_and_frees_the_seat(api: Api) -> None:
    event_id = api.event(price_minor=2500)
    _, headers = api.buyer(10_000)
    bought = api.buy(headers, {"event_id": event_id, "seat_ids": [seat(event_id)]}).json()
    order_id = bought["order"]["order_id"]

    cancelled = api.http.post(f"/orders/{order_id}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["order"]["status"] == "refunded"
    assert [t["status"] for t in body["tickets"]] == ["void"]
    assert api.http.get("/wallet", headers=headers).json()["balance_minor"] == 10_000
    assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 6

    _, other = api.buyer()
    assert api.buy(other, {"event_id": event_id, "seat_ids": [seat(event_id)]}).status_code == 201


def test_orders_are_listed_newest_first(api: Api) -> None:
    event_id = api.event()
    _, headers = api.buyer()
    first = api.buy(headers, {"event_id": event_id, "pool": "standing"}).json()
    second = api.buy(headers, {"event_id": event_id, "pool": "standing", "quantity": 2}).json()
    listed = api.http.get("/orders", headers=headers).json()["orders"]
    assert [p["order"]["order_id"] for p in listed] == [
        second["order"]["order_id"],
        first["order"]["order_id"],
    ]
    assert len(api.http.get("/tickets", headers=headers).json()["tickets"]) == 3


def test_the_openapi_document_and_the_docs_are_served(api: Api) -> None:
    document = api.http.get("/openapi.json").json()
    assert {"/events", "/purchases", "/holds/{hold_id}/order", "/orders/{order_id}/cancel"} <= set(
        document["paths"]
    )
    claim = document["components"]["schemas"]["ClaimIn"]["properties"]
    assert claim["event_id"]["maxLength"] == 64
    assert "Problem" in document["components"]["schemas"]
    assert api.http.get("/docs").status_code == 200
