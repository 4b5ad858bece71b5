"""Hostile and absurd input is refused with a 4xx problem, never answered 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import ADMIN, PROBLEM, Api, seat, uid

JUNK_STRINGS = [
    "",
    " ",
    "ü",
    "\u0000",
    "\ud7ff\ufffd",
    "\u202eevil",
    "🎟️" * 20,
    "a" * 65,
    "a" * 60_000,
    "../../etc/passwd",
    "x'; DROP TABLE seats; --",
    "ev/A/0001/0001\n",
]
JUNK_NUMBERS: list[Any] = [0, -1, -(10**30), 10**12 + 1, 10**30, 1.5, 1e308, True, "5", [], {}]


def _claims(event_id: str) -> list[Any]:
    bodies: list[Any] = [None, [], "x", 5, {}, {"event_id": event_id}]
    bodies += [{"event_id": event_id, "pool": "standing", "quantity": n} for n in JUNK_NUMBERS]
    bodies += [{"event_id": s, "pool": "standing"} for s in JUNK_STRINGS]
    bodies += [{"event_id": event_id, "pool": s} for s in JUNK_STRINGS]
    bodies += [{"event_id": event_id, "seat_ids": [s]} for s in JUNK_STRINGS]
    bodies += [
        {"event_id": event_id, "seat_ids": []},
        {"event_id": event_id, "seat_ids": [seat(event_id, 1, n) for n in range(1, 52)]},
        {"event_id": event_id, "seat_ids": [seat(event_id, 9999, 9999)]},
        {"event_id": event_id, "seat_ids": [seat(event_id)], "pool": "standing"},
        {"event_id": event_id, "seat_ids": [seat(event_id)], "quantity": 2},
        {"event_id": event_id, "seat_ids": seat(event_id)},
        {"event_id": event_id, "pool": "standing", "extra": 1},
    ]
    return bodies


def _events() -> list[Any]:
    base = {"event_id": uid("hostile"), "name": "Show", "currency": "EUR"}
    block = {"section": "A", "rows": 1, "seats_per_row": 1, "price_minor": 1}
    pool = {"name": "p", "capacity": 1, "price_minor": 1}
    bodies: list[Any] = [None, {}, base, {**base, "currency": "eur"}, {**base, "currency": "€€€"}]
    bodies += [{**base, "seat_blocks": [{**block, "rows": n}]} for n in [*JUNK_NUMBERS, None]]
    bodies += [{**base, "seat_blocks": [{**block, "price_minor": n}]} for n in JUNK_NUMBERS]
    bodies += [{**base, "pools": [{**pool, "capacity": n}]} for n in JUNK_NUMBERS if n != 0]
    bodies += [{**base, "name": s, "pools": [pool]} for s in JUNK_STRINGS]
    bodies += [{**base, "pools": [{**pool, "name": s}]} for s in JUNK_STRINGS]
    bodies += [
        {**base, "seat_blocks": [{**block, "rows": 9999, "seats_per_row": 9999}]},
        {**base, "seat_blocks": [{**block, "rows": 500, "seats_per_row": 500}] * 2},
        {**base, "seat_blocks": [block] * 51},
        {**base, "pools": [pool, pool]},
        {**base, "seat_blocks": [block, block]},
    ]
    return bodies


def _assert_refused(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert set(answer.json()) == {"type", "title", "status", "detail"}


def test_junk_claims_are_refused_without_a_5xx(api: Api) -> None:
    event_id = api.event()
    _, headers = api.buyer()
    for body in _claims(event_id):
        for path in ("/purchases", "/holds"):
            _assert_refused(api.http.post(path, headers=headers, json=body))
    ttl_in_a_purchase = {"event_id": event_id, "pool": "standing", "ttl_s": 1}
    _assert_refused(api.http.post("/purchases", headers=headers, json=ttl_in_a_purchase))
    holds = [{"event_id": event_id, "pool": "standing", "ttl_s": n} for n in JUNK_NUMBERS]
    for body in holds:
        _assert_refused(api.http.post("/holds", headers=headers, json=body))
    assert api.http.get("/orders", headers=headers).json() == {"orders": []}


def test_junk_events_buyers_and_top_ups_are_refused_without_a_5xx(api: Api) -> None:
    for body in _events():
        _assert_refused(api.http.post("/events", headers=ADMIN, json=body))
    for s in JUNK_STRINGS:
        _assert_refused(
            api.http.post("/buyers", headers=ADMIN, json={"buyer_id": s, "currency": "EUR"})
        )
    buyer_id, _ = api.buyer()
    for n in JUNK_NUMBERS:
        _assert_refused(
            api.http.post(f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": n})
        )
    _assert_refused(
        api.http.post("/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": "USD"})
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"{",
        b'{"event_id": "x"}}',
        b"\xef\xbb\xbf{}",
        b"\xc3\x28",
        b'{"event_id": "\\ud800"}',
        b'{"quantity": 1' + b"0" * 5000 + b"}",
        b'{"quantity": 1e99999}',
        b'{"quantity": NaN}',
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        json.dumps({"event_id": "x", "seat_ids": ["a"] * 5000}).encode(),
    ],
)
def test_raw_bytes_are_refused_without_a_5xx(sqlite_api: Api, raw: bytes) -> None:
    _, headers = sqlite_api.buyer()
    sent = {**headers, "Content-Type": "application/json"}
    _assert_refused(sqlite_api.http.post("/purchases", headers=sent, content=raw))
    _assert_refused(
        sqlite_api.http.post(
            "/events", headers={**ADMIN, "Content-Type": "application/json"}, content=raw
        )
    )


@pytest.mark.parametrize(
    "path",
    [
        "/events/%00",
        "/events/" + "a" * 2000,
        "/events/%F0%9F%8E%9F",
        "/events/..%2F..%2Fetc",
        "/events/a%0Ab",
        "/orders/%FF%FE",
        "/holds/" + "h" * 65,
        "/holds/-x/order",
        "/buyers/%20/top-ups",
    ],
)
def test_junk_path_ids_are_refused_without_a_5xx(sqlite_api: Api, path: str) -> None:
    _, headers = sqlite_api.buyer()
    method = "POST" if path.endswith(("/order", "/top-ups")) else "GET"
    auth = ADMIN if path.startswith("/buyers") else headers
    answer = sqlite_api.http.request(method, path, headers=auth, json={"amount_minor": 1})
    _assert_refused(answer)
