"""Idempotency-Key over HTTP, against real `lastseat serve` processes on both backends."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from api_helpers import (
    ADMIN,
    FORBIDDEN_IN_LOG,
    Api,
    Server,
    assert_problem,
    seat,
    server_env,
    serving,
    uid,
)

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.api.idempotency import is_final
from lastseat.bootstrap import open_store
from lastseat.domain.clock import FakeClock
from lastseat.service.idempotency import IdempotencyService, RequestKey, Started, StoredResponse

PRICE = 1000
FUNDS = 100_000
RUSH = 20


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    """Headers with this Idempotency-Key."""
    return {**headers, "Idempotency-Key": key}


def orders_of(api: Api, headers: dict[str, str]) -> list[dict[str, Any]]:
    """A buyer's orders."""
    orders: list[dict[str, Any]] = api.http.get("/orders", headers=headers).json()["orders"]
    return orders


def balance_of(api: Api, headers: dict[str, str]) -> int:
    """A buyer's wallet balance."""
    return int(api.http.get("/wallet", headers=headers).json()["balance_minor"])


def assert_same_answer(replayed: httpx.Response, first: httpx.Response) -> None:
    """A replay: the first answer's status, Location, Content-Type and exact body."""
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.status_code == first.status_code
    assert replayed.content == first.content
    for name in ("location", "content-type"):
        assert replayed.headers.get(name) == first.headers.get(name)


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server over a SQLite file for this module's quick tests."""
    root = tmp_path_factory.mktemp("idem-sqlite")
    with serving(str(root / "api.db"), root / "server.log") as server:
        yield server
    for word in FORBIDDEN_IN_LOG:
        assert word not in server.log_text()


@pytest.fixture
def api(sqlite_server: Server) -> Iterator[Api]:
    """A client of the module's server (fresh keys unless a test sends its own)."""
    client = Api(sqlite_server)
    yield client
    client.close()


# -- the header ---------------------------------------------------------------------------------


def test_a_mutating_request_without_a_well_formed_key_is_a_400_and_changes_nothing(
    api: Api,
) -> None:
    event_id = api.event()
    buyer_id, headers = api.buyer()
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    bad_keys: list[str | bytes] = ["x" * 256, "", "caf\xc3\xa9".encode("latin-1"), "a\tb"]
    with httpx.Client(base_url=api.server.url, timeout=30.0) as raw:  # sends no key of its own
        answers = [
            raw.post("/purchases", headers=headers, json=claim),
            raw.post("/events", headers=ADMIN, json={}),
            raw.post(f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": 5}),
            raw.delete("/holds/hld_x", headers=headers),
            raw.post("/orders/ord_x/cancel", headers=headers),
        ]
        answers += [
            raw.post("/purchases", headers={**headers, "Idempotency-Key": key}, json=claim)
            for key in bad_keys
        ]
        for answer in answers:
            assert_problem(answer, 400, "idempotency-key-missing")
        # Credentials are checked first; reads need no key.
        assert_problem(raw.post("/purchases", json=claim), 401, "unauthorized")
        assert raw.get(f"/events/{event_id}").status_code == 200
    assert orders_of(api, headers) == []
    assert balance_of(api, headers) == FUNDS


def test_the_openapi_document_shows_the_key_on_mutating_operations(api: Api) -> None:
    paths = api.http.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/purchases", "post"),
        ("/holds/{hold_id}", "delete"),
        ("/buyers/{buyer_id}/top-ups", "post"),
    ]:
        operation = paths[path][method]
        (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header" and header["required"] is True
        assert {"400", "409", "422"} <= set(operation["responses"])
    read = paths["/events/{event_id}"]["get"]
    assert all(p["name"] != "Idempotency-Key" for p in read.get("parameters", []))


# -- replay and reuse ---------------------------------------------------------------------------


def test_a_retry_with_the_same_key_replays_the_exact_answer_and_buys_once(api: Api) -> None:
    event_id = api.event(price_minor=PRICE)
    _, headers = api.buyer(FUNDS)
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    key = uid("key")

    first = api.http.post("/purchases", headers=keyed(headers, key), json=claim)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        assert_same_answer(
            api.http.post("/purchases", headers=keyed(headers, key), json=claim), first
        )
    assert len(orders_of(api, headers)) == 1
    assert balance_of(api, headers) == FUNDS - PRICE


def test_a_key_reused_with_a_changed_body_is_a_422_and_the_first_answer_stands(api: Api) -> None:
    event_id = api.event()
    _, headers = api.buyer()
    key = uid("key")
    claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
    first = api.http.post("/purchases", headers=keyed(headers, key), json=claim)
    assert first.status_code == 201

    changed = {"event_id": event_id, "seat_ids": [seat(event_id, number=2)]}
    reused = api.http.post("/purchases", headers=keyed(headers, key), json=changed)
    assert_problem(reused, 422, "idempotency-key-reused")
    assert_same_answer(api.http.post("/purchases", headers=keyed(headers, key), json=claim), first)
    assert len(orders_of(api, headers)) == 1


def test_a_definitive_refusal_is_replayed_even_after_the_cause_went_away(api: Api) -> None:
    event_id = api.event(price_minor=PRICE)
    buyer_id, headers = api.buyer(PRICE - 1)
    claim = {"event_id": event_id, "pool": "standing"}
    key = uid("key")
    refused = api.http.post("/purchases", headers=keyed(headers, key), json=claim)
    assert_problem(refused, 402, "insufficient-funds")

    topped = api.http.post(f"/buyers/{buyer_id}/top-ups", headers=ADMIN, json={"amount_minor": 1})
    assert topped.status_code == 200
    assert_same_answer(
        api.http.post("/purchases", headers=keyed(headers, key), json=claim), refused
    )
    assert orders_of(api, headers) == []


def test_a_key_belongs_to_its_caller(api: Api) -> None:
    event_id = api.event()
    key = uid("key")
    for number in (1, 2):
        _, headers = api.buyer()
        claim = {"event_id": event_id, "seat_ids": [seat(event_id, number=number)]}
        answer = api.http.post("/purchases", headers=keyed(headers, key), json=claim)
        assert answer.status_code == 201 and "idempotent-replayed" not in answer.headers


def test_a_top_up_retried_with_its_key_tops_up_once(api: Api) -> None:
    buyer_id, headers = api.buyer(0)
    key = uid("key")
    path = f"/buyers/{buyer_id}/top-ups"
    first = api.http.post(path, headers=keyed(ADMIN, key), json={"amount_minor": 700})
    again = api.http.post(path, headers=keyed(ADMIN, key), json={"amount_minor": 700})
    assert first.status_code == 200
    assert_same_answer(again, first)
    assert balance_of(api, headers) == 700


@pytest.mark.parametrize(
    ("status", "problem", "final"),
    [
        (201, None, True),
        (200, None, True),
        (202, None, False),
        (402, "insufficient-funds", True),
        (404, "not-found", True),
        (409, "unavailable", True),
        (409, "conflict", False),
        (410, "hold-expired", True),
        (422, "validation", True),
        (500, "internal", False),
        (503, "overloaded", False),
    ],
)
def test_only_final_answers_are_stored(status: int, problem: str | None, final: bool) -> None:
    if problem is None:
        response = StoredResponse(status, (("Content-Type", "application/json"),), b"{}")
    else:
        body = f'{{"type": "https://lastseat.dev/problems/{problem}"}}'.encode()
        response = StoredResponse(status, (("Content-Type", "application/problem+json"),), body)
    assert is_final(response) is final


# -- twenty requests with one key at once --------------------------------------------------------


def _database(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if request.param == "sqlite":
        return str(tmp_path / f"{name}.db")
    pg: ThrowawayPostgres = request.getfixturevalue("pg_server")
    return pg.create_database(f"{name}_{uid('db').replace('-', '_')}")


@pytest.fixture(params=["sqlite", "postgres"])
def slow_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server whose payments take 1.5 s, on each backend."""
    db = _database(request, tmp_path, "rush")
    env = server_env(db, LASTSEAT_PAYMENT_DELAY_MS="1500")
    with serving(db, tmp_path / "server.log", env=env) as server:
        yield server


def test_twenty_requests_with_one_key_at_once_buy_once(
    slow_server: Server, request: pytest.FixtureRequest
) -> None:
    api = Api(slow_server)
    event_id = api.event(price_minor=PRICE)
    _, headers = api.buyer(FUNDS)
    claim = {"event_id": event_id, "pool": "standing"}
    sent = keyed(headers, uid("key"))
    barrier = threading.Barrier(RUSH)
    limits = httpx.Limits(max_connections=RUSH)
    with httpx.Client(base_url=slow_server.url, timeout=30.0, limits=limits) as client:

        def buy(_: int) -> httpx.Response:
            barrier.wait()
            return client.post("/purchases", headers=sent, json=claim)

        with ThreadPoolExecutor(RUSH) as pool:
            answers = list(pool.map(buy, range(RUSH)))

    ran = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
    assert len(ran) == 1, [a.status_code for a in answers]
    for answer in answers:
        if answer is ran[0]:
            continue
        if answer.status_code == 409:
            assert_problem(answer, 409, "request-in-progress")
            assert int(answer.headers["retry-after"]) >= 1
        else:
            assert_same_answer(answer, ran[0])
    # On PostgreSQL the others begin while the first is paying: 409 in progress. SQLite has one
    # writer, so they may all queue behind the purchase's transaction, and it commits the
    # purchase with its stored answer: then every one of them gets the replay.
    if request.node.callspec.params["slow_server"] == "postgres":
        assert any(a.status_code == 409 for a in answers)
    assert_same_answer(api.http.post("/purchases", headers=sent, json=claim), ran[0])
    assert len(orders_of(api, headers)) == 1
    assert balance_of(api, headers) == FUNDS - PRICE
    api.close()


# -- restarts, other servers, and a server killed mid-request ------------------------------------


def test_a_finished_key_replays_on_another_server_and_after_a_restart(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = pg_server.create_database("idem_replay_anywhere")
    with serving(db, tmp_path / "a.log") as first_server:
        api = Api(first_server)
        event_id = api.event()
        _, headers = api.buyer()
        claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
        sent = keyed(headers, uid("key"))
        first = api.http.post("/purchases", headers=sent, json=claim)
        assert first.status_code == 201
        api.close()
        with serving(db, tmp_path / "b.log") as other_server, httpx.Client() as other:
            assert_same_answer(
                other.post(f"{other_server.url}/purchases", headers=sent, json=claim), first
            )
    with serving(db, tmp_path / "c.log") as restarted, httpx.Client() as client:
        assert_same_answer(
            client.post(f"{restarted.url}/purchases", headers=sent, json=claim), first
        )
        orders = client.get(f"{restarted.url}/orders", headers=headers).json()["orders"]
        assert len(orders) == 1


def _record_attempt(dsn: str, key: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT attempt FROM idempotency_keys WHERE idempotency_key = %s", (key,)
        ).fetchone()
    return None if row is None else int(row[0])


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_key_held_by_a_killed_server_is_taken_over_after_its_lease_and_runs_once(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = pg_server.create_database("idem_kill_nine")
    lease = {"LASTSEAT_IDEMPOTENCY_LEASE_MS": "2000"}
    slow = server_env(db, LASTSEAT_PAYMENT_DELAY_MS="9000", **lease)
    with (
        serving(db, tmp_path / "doomed.log", env=slow) as doomed,
        serving(db, tmp_path / "survivor.log", env=server_env(db, **lease)) as survivor,
        httpx.Client(base_url=survivor.url, timeout=30.0) as client,
    ):
        api = Api(survivor)
        event_id = api.event(price_minor=PRICE)
        _, headers = api.buyer(FUNDS)
        claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
        key = uid("key")
        sent = keyed(headers, key)

        with ThreadPoolExecutor(1) as pool:
            dying = pool.submit(httpx.post, f"{doomed.url}/purchases", headers=sent, json=claim)
            _wait_for(lambda: _record_attempt(db, key) == 1)  # the doomed server runs it
            os.kill(doomed.proc.pid, signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                dying.result(30)

        statuses = []
        answer = client.post("/purchases", headers=sent, json=claim)
        deadline = time.monotonic() + 20
        while answer.status_code == 409:
            assert_problem(answer, 409, "request-in-progress")
            statuses.append(409)
            assert time.monotonic() < deadline, "the key stayed in progress"
            time.sleep(min(float(answer.headers["retry-after"]), 0.25))
            answer = client.post("/purchases", headers=sent, json=claim)

        assert statuses, "the dead attempt's lease should still hold right after the kill"
        assert answer.status_code == 201, answer.text
        assert "idempotent-replayed" not in answer.headers
        assert _record_attempt(db, key) == 2
        assert_same_answer(client.post("/purchases", headers=sent, json=claim), answer)
        assert len(orders_of(api, headers)) == 1
        assert balance_of(api, headers) == FUNDS - PRICE
        api.close()


def _lease_until_us(dsn: str, key: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT lease_until_us FROM idempotency_keys WHERE idempotency_key = %s", (key,)
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_live_request_outlasting_its_first_lease_keeps_its_key(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = pg_server.create_database("idem_lease_renewed")
    env = server_env(db, LASTSEAT_PAYMENT_DELAY_MS="2500", LASTSEAT_IDEMPOTENCY_LEASE_MS="600")
    with serving(db, tmp_path / "server.log", env=env) as server:
        api = Api(server)
        event_id = api.event()
        _, headers = api.buyer()
        claim = {"event_id": event_id, "pool": "standing"}
        key = uid("key")
        sent = keyed(headers, key)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(api.http.post, "/purchases", headers=sent, json=claim)
            _wait_for(lambda: _lease_until_us(db, key) is not None)
            first_lease_us = _lease_until_us(db, key)
            assert first_lease_us is not None
            # Past the first lease, and renewed by the live request meanwhile.
            _wait_for(lambda: time.time() * 1_000_000 > first_lease_us + 200_000)
            assert (_lease_until_us(db, key) or 0) > first_lease_us
            assert_problem(
                api.http.post("/purchases", headers=sent, json=claim), 409, "request-in-progress"
            )
            first = running.result(30)
        assert first.status_code == 201
        assert _record_attempt(db, key) == 1  # never taken over
        assert_same_answer(api.http.post("/purchases", headers=sent, json=claim), first)
        assert len(orders_of(api, headers)) == 1
        api.close()


def test_a_server_reaps_keys_older_than_the_retention(tmp_path: Path) -> None:
    db = str(tmp_path / "reap.db")
    store = open_store(db)
    try:
        old = IdempotencyService(store, clock=FakeClock())  # 2026-01-01: long past 24 h
        begun = old.begin(RequestKey("admin", "POST", "/events", "ancient"), "f")
        assert isinstance(begun, Started)
        old.finish(begun.fence, StoredResponse(201, (), b"{}"))
    finally:
        store.close()

    with serving(db, tmp_path / "server.log") as server:
        api = Api(server)
        api.buyer(0)  # a keyed request; the server reaps after its first ones

        def reaped() -> bool:
            reader = open_store(db)
            try:
                fresh = IdempotencyService(reader, clock=FakeClock())
                again = fresh.begin(RequestKey("admin", "POST", "/events", "ancient"), "f")
                return isinstance(again, Started)
            finally:
                reader.close()

        _wait_for(reaped)
        api.close()
