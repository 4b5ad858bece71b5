"""The bench over HTTP: the ceiling route, the lean load generator, and its checked history.

Real `lastseat serve` processes on a throwaway PostgreSQL; no test asserts a speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psycopg
import pytest

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.api.routes import ceiling as ceiling_route
from lastseat.lab import http_load
from lastseat.lab.bench_rows import http_row
from lastseat.lab.history import read_history
from lastseat.lab.http_load import http_ceiling, outcome
from lastseat.lab.runner import RaceConfig, prepare
from lastseat.lab.scenarios import Scenario
from lastseat.lab.servers import server_fleet
from lastseat.lab.wire import WireAnswer
from lastseat.service.auth import issue_token

CLAIM = {"event_id": "race", "pool": "standing", "quantity": 2}


def test_the_lab_sends_what_the_ceiling_route_serves() -> None:
    assert http_load.CEILING_PATH == ceiling_route.CEILING_PATH
    assert http_load.CEILING_TOKEN_HEADER == ceiling_route.TOKEN_HEADER


def test_the_ceiling_route_answers_a_buyer_and_writes_nothing(
    pg_server: ThrowawayPostgres,
) -> None:
    db = pg_server.create_database("bench_ceiling_route")
    prepare(RaceConfig(Scenario("ga", 4, capacity=4)), "atomic", db)
    with server_fleet(1, db, "atomic") as fleet:
        url = fleet.urls[0] + ceiling_route.CEILING_PATH
        token = issue_token(fleet.token_secret, "buyer-000001")
        header = ceiling_route.TOKEN_HEADER

        answered = httpx.post(url, json=CLAIM, headers={header: token})
        missing = httpx.post(url, json=CLAIM)
        forged = httpx.post(url, json=CLAIM, headers={header: token + "x"})
        invalid = httpx.post(url, json={"event_id": "race"}, headers={header: token})
        document = httpx.get(fleet.urls[0] + "/openapi.json").json()

    assert answered.status_code == 201, answered.text
    body = answered.json()
    assert body["order"]["status"] == "confirmed"
    assert [t["pool_id"] for t in body["tickets"]] == ["race/standing", "race/standing"]
    assert (missing.status_code, forged.status_code, invalid.status_code) == (401, 401, 422)
    assert ceiling_route.CEILING_PATH not in document["paths"]
    with psycopg.connect(db) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM orders)"
        ).fetchone()
    assert counts == (0, 0)  # no Idempotency-Key record, no order: no database work


def test_the_http_ceiling_counts_the_answers_of_every_server(pg_server: ThrowawayPostgres) -> None:
    db = pg_server.create_database("bench_http_ceiling")
    with server_fleet(2, db, "atomic") as fleet:
        found = http_ceiling(fleet.urls, fleet.token_secret, concurrency=4, duration_s=0.3)

    assert (found.name, found.connections, found.servers) == ("http", 4, 2)
    assert found.operations > 0
    assert found.load_cpu_share > 0


def test_http_purchases_are_recorded_and_checked_like_any_race(
    pg_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = pg_server.create_database("bench_http_purchases")
    scenario = Scenario("ga", 14, capacity=10, max_units=1, poor_fraction=0.0)
    history = tmp_path / "http.jsonl"

    row = http_row(scenario, "atomic", db, history, concurrency=4, servers=2)

    assert row.verdict_ok, row.violations
    assert (row.attempts, row.ok, row.errors) == (14, 10, 0)
    assert (row.mode, row.servers) == ("http x2", 2)
    assert row.load_cpu_share is not None
    assert row.peak_rss_mb > 0
    operations = list(read_history(history))
    refused = [op for op in operations if op.type == "fail"]
    assert [op.error for op in refused] == ["unavailable"] * 4
    assert all(op.idempotency_key for op in operations)


def _answer(status: int, body: object, retry_after: str | None = None) -> WireAnswer:
    return WireAnswer(status, json.dumps(body).encode(), retry_after)


@pytest.mark.parametrize(
    ("answer", "kind", "error"),
    [
        (None, "info", "no answer"),
        (
            _answer(409, {"type": "https://lastseat.dev/problems/unavailable"}),
            "fail",
            "unavailable",
        ),
        (_answer(503, {"type": "https://lastseat.dev/problems/overloaded"}), "fail", "busy"),
        (
            _answer(409, {"type": "https://lastseat.dev/problems/request-in-progress"}),
            "info",
            "request-in-progress",
        ),
        (_answer(500, {"type": "https://lastseat.dev/problems/internal"}), "info", "internal"),
        (WireAnswer(502, b"<html>bad gateway</html>"), "info", "HTTP 502"),
    ],
)
def test_an_answer_is_recorded_as_a_sale_a_refusal_or_an_unknown_outcome(
    answer: WireAnswer | None, kind: str, error: str
) -> None:
    assert outcome(answer) == (
        kind,
        {**({"status": answer.status} if answer else {}), "error": error},
    )


def test_a_confirmed_order_is_recorded_with_its_ticket_codes() -> None:
    body = {"order": {"order_id": "ord-1"}, "tickets": [{"code": "c1"}, {"code": "c2"}]}

    assert outcome(_answer(201, body)) == (
        "ok",
        {"status": 201, "order_id": "ord-1", "ticket_codes": ("c1", "c2")},
    )
    assert outcome(_answer(202, body)) == ("info", {"status": 202, "order_id": "ord-1"})
