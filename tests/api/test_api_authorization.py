"""Who may do what: admin routes need the admin key; buyers see only their own things."""

from __future__ import annotations

import pytest
from api_helpers import ADMIN, TOKEN_SECRET, Api, assert_problem, bearer, seat, uid

from lastseat.service.auth import issue_token

ADMIN_ROUTES = [
    ("POST", "/events", {"event_id": "x", "name": "X", "currency": "EUR", "pools": []}),
    ("POST", "/buyers", {"buyer_id": "x", "currency": "EUR"}),
    ("POST", "/buyers/x/top-ups", {"amount_minor": 1}),
]
BUYER_ROUTES = [
    ("GET", "/wallet", None),
    ("GET", "/orders", None),
    ("GET", "/orders/ord_x", None),
    ("POST", "/orders/ord_x/cancel", None),
    ("GET", "/tickets", None),
    ("POST", "/purchases", {"event_id": "x", "pool": "standing"}),
    ("POST", "/holds", {"event_id": "x", "pool": "standing"}),
    ("GET", "/holds/hld_x", None),
    ("DELETE", "/holds/hld_x", None),
    ("POST", "/holds/hld_x/order", None),
]
NOT_CREDENTIALS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer garbage"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "Bearer alice.c2lnbmF0dXJl"},
    {"Authorization": "Bearer " + "x." * 2000},
    {"Authorization": "Bearer ünïcødé.tøken"},
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES + BUYER_ROUTES)
@pytest.mark.parametrize("headers", NOT_CREDENTIALS)
def test_missing_or_garbage_credentials_get_401(
    sqlite_api: Api, method: str, path: str, body: object, headers: dict[str, str]
) -> None:
    # Non-ASCII header values must be sent as raw bytes.
    raw = {k: v.encode() for k, v in headers.items()}
    answer = sqlite_api.http.request(method, path, headers=raw, json=body)
    assert_problem(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_buyer_on_an_admin_route_gets_403(
    sqlite_api: Api, method: str, path: str, body: object
) -> None:
    _, headers = sqlite_api.buyer()
    assert_problem(
        sqlite_api.http.request(method, path, headers=headers, json=body), 403, "forbidden"
    )


def test_the_admin_key_is_not_a_buyer_token(sqlite_api: Api) -> None:
    assert_problem(sqlite_api.http.get("/wallet", headers=ADMIN), 401, "unauthorized")


def test_a_token_signed_with_another_secret_is_refused(sqlite_api: Api) -> None:
    forged = issue_token(b"some-other-secret-of-16+-bytes", "alice")
    assert_problem(sqlite_api.http.get("/wallet", headers=bearer(forged)), 401, "unauthorized")


def test_buyer_a_cannot_see_or_touch_buyer_bs_orders_and_holds(api: Api) -> None:
    event_id = api.event()
    _, alice = api.buyer()
    _, bob = api.buyer()
    order = api.buy(bob, {"event_id": event_id, "seat_ids": [seat(event_id)]}).json()["order"]
    hold = api.http.post(
        "/holds", headers=bob, json={"event_id": event_id, "seat_ids": [seat(event_id, 2, 2)]}
    ).json()

    for method, path in [
        ("GET", f"/orders/{order['order_id']}"),
        ("POST", f"/orders/{order['order_id']}/cancel"),
        ("GET", f"/holds/{hold['hold_id']}"),
        ("DELETE", f"/holds/{hold['hold_id']}"),
        ("POST", f"/holds/{hold['hold_id']}/order"),
    ]:
        assert_problem(api.http.request(method, path, headers=alice), 404, "not-found")
    assert api.http.get("/orders", headers=alice).json() == {"orders": []}
    assert api.http.get("/tickets", headers=alice).json() == {"tickets": []}

    # Bob's things are untouched.
    assert api.http.get(f"/orders/{order['order_id']}", headers=bob).json()["order"]["status"] == (
        "confirmed"
    )
    assert api.http.get(f"/holds/{hold['hold_id']}", headers=bob).json()["status"] == "active"


def test_a_buyer_sees_only_their_own_wallet(sqlite_api: Api) -> None:
    alice_id, alice = sqlite_api.buyer(111)
    sqlite_api.buyer(222)
    assert sqlite_api.http.get("/wallet", headers=alice).json()["buyer_id"] == alice_id
    assert sqlite_api.http.get("/wallet", headers=alice).json()["balance_minor"] == 111


def test_a_valid_token_for_a_buyer_without_a_wallet_finds_nothing(sqlite_api: Api) -> None:
    ghost = bearer(issue_token(TOKEN_SECRET.encode(), uid("ghost")))
    assert_problem(sqlite_api.http.get("/wallet", headers=ghost), 404, "not-found")
    assert sqlite_api.http.get("/orders", headers=ghost).json() == {"orders": []}
