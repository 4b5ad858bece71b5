"""The one error table: every error type the service raises maps to its problem document.

Errors a live server cannot be made to raise on demand (a store busy past its timeout, an
unsafe strategy) are raised here by a stub use case inside an in-process app.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import ADMIN_KEY, TOKEN_SECRET, assert_problem
from fastapi import FastAPI

from lastseat.adapters.sqlite.errors import translated
from lastseat.api.app import create_app
from lastseat.api.problems import (
    OPERATOR_ERRORS,
    PROBLEM_TYPES,
    problem_for_error,
    problem_for_status,
    public_detail,
)
from lastseat.api.settings import Settings
from lastseat.bootstrap import build, open_store
from lastseat.domain import errors

CASES = [
    (errors.ValidationError, 422, "validation"),
    (errors.NotFoundError, 404, "not-found"),
    (errors.UnavailableError, 409, "unavailable"),
    (errors.ConflictError, 409, "conflict"),
    (errors.RetriesExhaustedError, 409, "conflict"),
    (errors.RacingWriteError, 409, "conflict"),
    (errors.SerializationError, 409, "conflict"),
    (errors.HoldExpiredError, 410, "hold-expired"),
    (errors.InsufficientFundsError, 402, "insufficient-funds"),
    (errors.InvalidTransitionError, 409, "invalid-state"),
    (errors.StateConflictError, 409, "invalid-state"),
    (errors.FencedOutError, 409, "conflict"),
    (errors.LockServiceError, 503, "unavailable-store"),
    (errors.PaymentProviderError, 500, "internal"),
    (errors.UnsafeStrategyError, 422, "unsafe-strategy"),
    (errors.StoreError, 503, "unavailable-store"),
    (errors.SchemaVersionError, 503, "unavailable-store"),
    (errors.StoreBusyError, 503, "overloaded"),
    (errors.LockTimeoutError, 503, "overloaded"),
]


class InProcess:
    """An app called in this process, its services opened by hand (no lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.get(path)

        return asyncio.run(call())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InProcess]:
    settings = Settings(ADMIN_KEY, TOKEN_SECRET.encode(), db=str(tmp_path / "t.db"))
    app = create_app(settings)
    store = open_store(settings.db)
    app.state.services = build(store)
    try:
        yield InProcess(app)
    finally:
        store.close()


@pytest.mark.parametrize(("error", "status", "slug"), CASES)
def test_each_service_error_is_answered_with_its_problem(
    client: InProcess,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: type[Exception],
    status: int,
    slug: str,
) -> None:
    caplog.set_level(logging.INFO, logger="lastseat")
    message = f"stub {error.__name__} on lock seat:ev/A/0001/0001 at db-host:5432"

    def fail(event_id: str) -> None:
        raise error(message)

    monkeypatch.setattr(client.app.state.services.booking, "availability", fail)
    answer = client.get("/events/ev")
    body = assert_problem(answer, status, slug)
    assert ("retry-after" in answer.headers) == (slug == "overloaded")
    if body["detail"] != message:
        # Written for operators (lock resources, hosts): the caller reads what happened in
        # its own words, and the message is kept in the log.
        assert body["detail"] == public_detail(error(message))
        assert "seat:" not in body["detail"] and "db-host" not in body["detail"]
        assert message in caplog.text
    else:
        assert not any(issubclass(error, kind) for kind, _ in OPERATOR_ERRORS)
        assert status < 500


def test_an_unexpected_error_is_a_logged_500_problem_as_the_last_resort(
    client: InProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(event_id: str) -> None:
        raise RuntimeError("boom with a secret " + ADMIN_KEY)

    monkeypatch.setattr(client.app.state.services.booking, "availability", crash)
    answer = client.get("/events/ev")
    body = assert_problem(answer, 500, "internal")
    assert ADMIN_KEY not in body["detail"]
    assert "RuntimeError" in caplog.text
    assert ADMIN_KEY not in caplog.text


def test_a_racing_write_names_no_table_to_the_caller_and_its_constraint_to_the_log() -> None:
    # A real driver error, as a naive sale racing another for one seat meets it.
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE tickets (seat_id TEXT UNIQUE)")
    db.execute("INSERT INTO tickets VALUES ('A-1')")
    with pytest.raises(errors.RacingWriteError) as raised, translated():
        db.execute("INSERT INTO tickets VALUES ('A-1')")
    assert "tickets.seat_id" in str(raised.value)
    detail = public_detail(raised.value)
    assert "tickets" not in detail and "constraint" not in detail
    assert problem_for_error(raised.value).slug == "conflict"


def test_every_error_row_is_reachable_and_every_status_has_a_row() -> None:
    for row in PROBLEM_TYPES:
        for error in row.raised_by:
            # Only the type matters (some errors take more than a message to construct).
            assert problem_for_error(error.__new__(error)) == row
        assert problem_for_status(row.status).status == row.status
    assert problem_for_status(418).slug == "http-418"
    assert len({row.slug for row in PROBLEM_TYPES}) == len(PROBLEM_TYPES)


def test_settings_keep_secrets_out_of_their_repr() -> None:
    settings = Settings(ADMIN_KEY, TOKEN_SECRET.encode())
    assert ADMIN_KEY not in repr(settings)
    assert TOKEN_SECRET not in repr(settings)
