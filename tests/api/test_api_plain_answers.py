"""Answers that say what is wrong in the caller's words (issue 8): no internal identifier in a
problem detail, a claim's unknown event or malformed seat named as such, every 405 with an
`Allow` header naming the path's methods, metrics of pre-routing answers under their route,
and a schema whose bounds are the server's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import ADMIN, Api, assert_problem, seat, uid
from jsonschema_rs import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from lastseat.api.schemas import (
    MAX_BLOCKS,
    MAX_ROWS_PER_BLOCK,
    MAX_SEATS_PER_ROW,
)
from lastseat.domain.holds import MAX_SEATS_PER_CLAIM, MAX_UNITS_PER_CLAIM
from lastseat.domain.inventory import MAX_PRICE_MINOR, MAX_SEATS_PER_EVENT
from lastseat.domain.ledger import MAX_AMOUNT_MINOR

# What an internal identifier looks like: ledger account ids, lock and fencing words,
# driver and schema words.
INTERNAL = ("wallet:", "revenue:", "world:", "fenc", "SQLSTATE", "constraint", "sqlite", "psql")


def _no_internals(detail: str, *ids: str) -> None:
    for word in (*INTERNAL, *ids):
        assert word not in detail, detail


def test_a_402_says_how_much_the_wallet_lacks_and_names_no_account(api: Api) -> None:
    event_id = api.event(price_minor=4000)
    buyer_id, headers = api.buyer(funds_minor=100)
    answer = api.buy(headers, {"event_id": event_id, "seat_ids": [seat(event_id)]})
    body = assert_problem(answer, 402, "insufficient-funds")
    assert body["detail"] == "the wallet holds less than 40.00 EUR"
    _no_internals(body["detail"], buyer_id)


def test_no_4xx_detail_carries_an_internal_identifier(api: Api) -> None:
    event_id = api.event(capacity=1)
    buyer_id, headers = api.buyer()
    poor_id, poor = api.buyer(funds_minor=0)
    answers = [
        api.buy(poor, {"event_id": event_id, "pool": "standing"}),
        api.buy(poor, {"event_id": event_id, "seat_ids": [seat(event_id, 2, 3)]}),
        api.http.post(f"/holds/{uid('hld')}/order", headers=headers),
        api.http.delete(f"/holds/{uid('hld')}", headers=headers),
        api.http.post(f"/orders/{uid('ord')}/cancel", headers=headers),
        api.http.post(f"/buyers/{uid('nobody')}/top-ups", headers=ADMIN, json={"amount_minor": 1}),
        api.http.post("/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": "USD"}),
    ]
    hold = api.http.post("/holds", headers=poor, json={"event_id": event_id, "pool": "standing"})
    assert hold.status_code == 201, hold.text
    answers.append(api.http.post(f"/holds/{hold.json()['hold_id']}/order", headers=poor))
    answers.append(api.buy(headers, {"event_id": event_id, "pool": "standing"}))  # held: 409
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        _no_internals(answer.json()["detail"], poor_id)


def test_a_claim_on_an_unknown_event_says_there_is_no_such_event(api: Api) -> None:
    _, headers = api.buyer()
    missing = uid("ev")
    claims: list[dict[str, Any]] = [
        {"seat_ids": [seat(missing)]},
        {"pool": "standing"},
        {"section": "A", "quantity": 2},
    ]
    for claim in claims:
        body = assert_problem(api.buy(headers, {"event_id": missing, **claim}), 404, "not-found")
        assert body["detail"] == f"no event {missing}"


def test_a_seat_of_another_event_and_a_malformed_seat_id_each_say_what_is_wrong(
    sqlite_api: Api,
) -> None:
    event_id = sqlite_api.event()
    other = sqlite_api.event()
    _, headers = sqlite_api.buyer()
    foreign = {"event_id": event_id, "seat_ids": [seat(other)]}
    body = assert_problem(sqlite_api.buy(headers, foreign), 404, "not-found")
    assert body["detail"] == f"seat {seat(other)} is not a seat of event {event_id}"
    malformed = {"event_id": event_id, "seat_ids": [f"{event_id}/A/1/1"]}
    body = assert_problem(sqlite_api.buy(headers, malformed), 422, "validation")
    assert f"seat id '{event_id}/A/1/1' is not EVENT/SECTION/ROW/NUMBER" in body["detail"]
    assert "^[" not in body["detail"]  # words, not the pattern


def test_a_wallet_in_another_currency_is_a_409_state_conflict_not_a_422(api: Api) -> None:
    event_id = api.event(currency="USD")
    buyer_id, headers = api.buyer()
    again = api.http.post("/buyers", headers=ADMIN, json={"buyer_id": buyer_id, "currency": "USD"})
    assert "already has a EUR wallet" in assert_problem(again, 409, "invalid-state")["detail"]
    answer = api.buy(headers, {"event_id": event_id, "pool": "standing"})
    assert (
        "pays in EUR, the event sells in USD"
        in assert_problem(answer, 409, "invalid-state")["detail"]
    )


def test_every_405_names_in_allow_exactly_the_methods_the_schema_lists(sqlite_api: Api) -> None:
    paths = sqlite_api.http.get("/openapi.json").json()["paths"]
    assert len(paths) >= 14
    for template, operations in paths.items():
        path = template.replace("{", "x").replace("}", "")
        documented = {method.upper() for method in operations}
        for method in ("OPTIONS", "PATCH", *({"GET", "PUT", "DELETE"} - documented)):
            answer = sqlite_api.http.request(method, path, headers=ADMIN)
            assert_problem(answer, 405, "method-not-allowed")
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == documented, (method, template, answer.headers)


def _requests_by_route(api: Api) -> dict[tuple[str, str, str], float]:
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(api.http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "lastseat_http_requests_total":
                labels = sample.labels
                counts[(labels["route"], labels["method"], labels["status"])] = sample.value
    return counts


def test_replays_and_idempotency_key_problems_count_under_their_route(sqlite_api: Api) -> None:
    event_id = sqlite_api.event()
    _, headers = sqlite_api.buyer()
    before = _requests_by_route(sqlite_api)
    body = {"event_id": event_id, "pool": "standing"}
    keyed = {**headers, "Idempotency-Key": uid("key")}
    assert sqlite_api.buy(keyed, body).status_code == 201
    replay = sqlite_api.buy(keyed, body)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    assert_problem(sqlite_api.buy(keyed, {**body, "quantity": 2}), 422, "idempotency-key-reused")
    no_key = httpx.post(f"{sqlite_api.server.url}/purchases", headers=headers, json=body)
    assert_problem(no_key, 400, "idempotency-key-missing")
    held = {**headers, "Idempotency-Key": uid("key")}
    hold = sqlite_api.http.post("/holds", headers=held, json=body)
    assert sqlite_api.http.post("/holds", headers=held, json=body).status_code == 201
    assert hold.status_code == 201
    after = _requests_by_route(sqlite_api)

    def grown(route: str, status: str, method: str = "POST") -> float:
        return after.get((route, method, status), 0) - before.get((route, method, status), 0)

    assert grown("/purchases", "201") == 2  # the sale and its replay
    assert grown("/purchases", "422") == 1
    assert grown("/purchases", "400") == 1
    assert grown("/holds", "201") == 2
    assert all(grown("unmatched", status) == 0 for status in ("201", "400", "422"))


def test_the_schema_bounds_are_the_domain_rules() -> None:
    # Members bounded one by one keep the cross-member rules the schema cannot state.
    assert MAX_BLOCKS * MAX_ROWS_PER_BLOCK * MAX_SEATS_PER_ROW <= MAX_SEATS_PER_EVENT
    assert MAX_PRICE_MINOR * max(MAX_SEATS_PER_CLAIM, MAX_UNITS_PER_CLAIM) <= MAX_AMOUNT_MINOR


@pytest.mark.parametrize(
    "claim",
    [
        {"seat_ids": ["e/A/0001/0001"], "pool": "p", "section": "A"},
        {"seat_ids": ["e/A/0001/0001"], "quantity": 1},
        {"pool": "p", "section": "A"},
        {},
    ],
)
def test_the_schema_and_the_server_both_refuse_a_claim_of_not_exactly_one_kind(
    sqlite_api: Api, claim: dict[str, Any]
) -> None:
    schemas = sqlite_api.http.get("/openapi.json").json()["components"]["schemas"]
    body = {"event_id": "e", **claim}
    validator = Draft202012Validator({**schemas["ClaimIn"], "components": {"schemas": schemas}})
    assert not validator.is_valid(body)
    _, headers = sqlite_api.buyer()
    assert_problem(sqlite_api.buy(headers, body), 422, "validation")


def test_a_whole_number_written_with_a_fraction_is_an_integer_as_json_schema_says(
    sqlite_api: Api,
) -> None:
    buyer_id, _ = sqlite_api.buyer(funds_minor=0)
    answer = sqlite_api.http.post(
        f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": 3125.0}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance_minor"] == 3125
    fraction = {"amount_minor": 3125.5}
    refused = sqlite_api.http.post(f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json=fraction)
    assert_problem(refused, 422, "validation")
