"""Every problem type a client can meet, as RFC 9457 documents, through a real server."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest
from api_helpers import ADMIN, Api, assert_problem, seat, serving, uid

from lastseat.adapters.postgres.server import ThrowawayPostgres


def test_a_body_that_breaks_a_limit_is_a_422_validation_problem(sqlite_api: Api) -> None:
    _, headers = sqlite_api.buyer()
    answer = sqlite_api.buy(headers, {"event_id": "ev", "pool": "standing", "quantity": 51})
    body = assert_problem(answer, 422, "validation")
    assert "quantity" in body["detail"]


def test_a_domain_rule_broken_is_a_422_validation_problem(sqlite_api: Api) -> None:
    event_id = sqlite_api.event()
    _, headers = sqlite_api.buyer()
    twice = {"event_id": event_id, "seat_ids": [seat(event_id), seat(event_id)]}
    body = assert_problem(sqlite_api.buy(headers, twice), 422, "validation")
    assert "each seat once" in body["detail"]


def test_a_well_formed_seat_of_another_event_is_404_naming_the_seat(sqlite_api: Api) -> None:
    """The schema cannot tie a seat id to the claim's event_id, so a client built from it
    can send one: the event has no such seat (404), like any seat id it does not know."""
    event_id = sqlite_api.event()
    _, headers = sqlite_api.buyer()
    foreign = {"event_id": event_id, "seat_ids": ["other/A/0001/0001"]}
    body = assert_problem(sqlite_api.buy(headers, foreign), 404, "not-found")
    assert body["detail"] == f"seat other/A/0001/0001 is not a seat of event {event_id}"


def test_a_body_that_is_not_json_is_a_400_malformed_request(sqlite_api: Api) -> None:
    _, headers = sqlite_api.buyer()
    for content in (b'{"event_id": "x",', b"\xff\xfe\x00garbage", b"[" * 30_000):
        answer = sqlite_api.http.post(
            "/purchases",
            headers={**headers, "Content-Type": "application/json"},
            content=content,
        )
        assert_problem(answer, 400, "malformed-request")


def test_unknown_things_are_404_not_found(api: Api) -> None:
    _, headers = api.buyer()
    assert_problem(api.http.get("/events/no-such-event"), 404, "not-found")
    assert_problem(api.http.get("/events/no-such-event/seats"), 404, "not-found")
    assert_problem(api.http.get("/orders/ord_missing", headers=headers), 404, "not-found")
    assert_problem(api.http.get("/holds/hld_missing", headers=headers), 404, "not-found")
    assert_problem(
        api.http.post("/buyers/nobody/top-ups", headers=ADMIN, json={"amount_minor": 5}),
        404,
        "not-found",
    )
    event_id = api.event()
    missing_pool = {"event_id": event_id, "pool": "balcony"}
    assert_problem(api.buy(headers, missing_pool), 404, "not-found")
    assert_problem(api.http.get("/no/such/route"), 404, "not-found")


def test_a_wrong_method_is_a_405_problem(sqlite_api: Api) -> None:
    answer = sqlite_api.http.put("/events", json={})
    assert_problem(answer, 405, "method-not-allowed")
    assert "POST" in answer.headers["allow"]


def test_a_sold_seat_is_a_409_unavailable_problem(api: Api) -> None:
    event_id = api.event()
    _, alice = api.buyer()
    _, bob = api.buyer()
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    assert api.buy(alice, claim).status_code == 201
    assert_problem(api.buy(bob, claim), 409, "unavailable")
    sold_out = {"event_id": event_id, "pool": "standing", "quantity": 11}
    assert_problem(api.buy(bob, sold_out), 409, "unavailable")


def test_an_event_id_taken_already_is_a_409_conflict(api: Api) -> None:
    event_id = api.event()
    again = {
        "event_id": event_id,
        "name": "Again",
        "currency": "EUR",
        "pools": [{"name": "x", "capacity": 1, "price_minor": 1}],
    }
    assert_problem(api.http.post("/events", headers=ADMIN, json=again), 409, "conflict")


def test_a_transition_the_state_machine_forbids_is_a_409_invalid_state(api: Api) -> None:
    event_id = api.event()
    _, headers = api.buyer()
    hold = api.http.post(
        "/holds", headers=headers, json={"event_id": event_id, "pool": "standing"}
    ).json()
    assert api.http.delete(f"/holds/{hold['hold_id']}", headers=headers).status_code == 200
    assert_problem(
        api.http.post(f"/holds/{hold['hold_id']}/order", headers=headers), 409, "invalid-state"
    )
    paid = api.http.post("/holds", headers=headers, json={"event_id": event_id, "pool": "standing"})
    api.http.post(f"/holds/{paid.json()['hold_id']}/order", headers=headers)
    assert_problem(
        api.http.delete(f"/holds/{paid.json()['hold_id']}", headers=headers), 409, "invalid-state"
    )


def test_paying_a_lapsed_hold_whose_seat_was_sold_is_a_410_and_charges_nothing(api: Api) -> None:
    event_id = api.event()
    _, alice = api.buyer(5000)
    _, bob = api.buyer(5000)
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    hold = api.http.post("/holds", headers=alice, json={**claim, "ttl_s": 1}).json()
    time.sleep(1.1)
    assert api.http.get(f"/holds/{hold['hold_id']}", headers=alice).json()["status"] == "expired"
    assert api.buy(bob, claim).status_code == 201
    assert_problem(
        api.http.post(f"/holds/{hold['hold_id']}/order", headers=alice), 410, "hold-expired"
    )
    assert api.http.get("/wallet", headers=alice).json()["balance_minor"] == 5000


def test_a_wallet_too_small_is_a_402_and_nothing_is_sold(api: Api) -> None:
    event_id = api.event(price_minor=1000)
    _, headers = api.buyer(999)
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    assert_problem(api.buy(headers, claim), 402, "insufficient-funds")
    assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 6
    assert api.http.get("/wallet", headers=headers).json()["balance_minor"] == 999


def test_a_body_over_64_kib_is_a_413_before_it_is_parsed(sqlite_api: Api) -> None:
    _, headers = sqlite_api.buyer()
    big = b'{"event_id": "' + b"x" * 70_000 + b'"}'
    answer = sqlite_api.http.post(
        "/purchases", headers={**headers, "Content-Type": "application/json"}, content=big
    )
    assert_problem(answer, 413, "payload-too-large")

    def chunks() -> object:
        for _ in range(20):
            yield b"x" * 8192

    streamed = sqlite_api.http.post(
        "/purchases",
        headers={**headers, "Content-Type": "application/json"},
        content=chunks(),  # type: ignore[arg-type]
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "payload-too-large")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_by_content_type_is_a_415(
    sqlite_api: Api, content_type: str | None
) -> None:
    _, headers = sqlite_api.buyer()
    typed = {"Content-Type": content_type} if content_type else {}
    answer = sqlite_api.http.post(
        "/purchases", headers={**headers, **typed}, content=b'{"event_id":"x"}'
    )
    assert_problem(answer, 415, "unsupported-media-type")
    admin = sqlite_api.http.post("/events", headers={**ADMIN, **typed}, content=b"{}")
    assert_problem(admin, 415, "unsupported-media-type")


def test_a_json_content_type_with_parameters_or_a_suffix_is_accepted(sqlite_api: Api) -> None:
    event_id = sqlite_api.event()
    _, headers = sqlite_api.buyer()
    for content_type in ("application/json; charset=utf-8", "application/vnd.lastseat+json"):
        answer = sqlite_api.http.post(
            "/purchases",
            headers={**headers, "Content-Type": content_type},
            content=f'{{"event_id":"{event_id}","pool":"standing"}}'.encode(),
        )
        assert answer.status_code == 201, answer.text


def test_a_lost_database_is_a_503_problem_on_ready(
    api_postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = uid("gone").replace("-", "_")
    dsn = api_postgres.create_database(name)
    root = tmp_path_factory.mktemp("api-gone")
    with serving(dsn, root / "server.log") as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        with psycopg.connect(api_postgres.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        answer = httpx.get(f"{server.url}/ready", timeout=60)
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"].rsplit("/", 1)[1] in {"unavailable-store", "overloaded"}
        assert httpx.get(f"{server.url}/health").status_code == 200
