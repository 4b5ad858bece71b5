"""Answers that are not final leave the key retryable; the sweep command reaps old keys.

The failures a live server cannot be made to produce on demand (a transient conflict, a crash)
are raised here by a stubbed use case inside an in-process app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import ADMIN, ADMIN_KEY, TOKEN_SECRET, assert_problem
from click.testing import CliRunner
from fastapi import FastAPI

from lastseat.api.app import create_app
from lastseat.api.settings import Settings
from lastseat.bootstrap import Services, build, open_store
from lastseat.cli.main import cli
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import ConflictError
from lastseat.domain.money import Money
from lastseat.service.idempotency import (
    IdempotencyService,
    Replay,
    RequestFence,
    RequestKey,
    Started,
    StoredResponse,
)

TOP_UP = "/buyers/alice/top-ups"
KEYED = {**ADMIN, "Idempotency-Key": "top-up-1"}


class InProcess:
    """An app called in this process, its services opened by hand (no lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.services: Services = app.state.services

    def post(self, path: str, body: dict[str, object]) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.post(path, headers=KEYED, json=body)

        return asyncio.run(call())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InProcess]:
    settings = Settings(ADMIN_KEY, TOKEN_SECRET.encode(), db=str(tmp_path / "t.db"))
    app = create_app(settings)
    store = open_store(settings.db)
    app.state.services = build(store)
    app.state.services.wallets.open_wallet("alice", "EUR")
    try:
        yield InProcess(app)
    finally:
        store.close()


def _fails_once(monkeypatch: pytest.MonkeyPatch, client: InProcess, error: Exception) -> None:
    real = client.services.wallets.top_up
    calls: list[RequestFence | None] = []

    def top_up(buyer_id: str, amount: Money, fence: RequestFence | None = None) -> Money:
        calls.append(fence)
        if len(calls) == 1:
            raise error
        return real(buyer_id, amount, fence)

    monkeypatch.setattr(client.services.wallets, "top_up", top_up)


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (ConflictError("a concurrent writer won"), 409, "conflict"),
        (RuntimeError("crash"), 500, "internal"),
    ],
)
def test_a_transient_failure_is_not_stored_and_the_retry_runs_again(
    client: InProcess,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    slug: str,
) -> None:
    _fails_once(monkeypatch, client, error)
    assert_problem(client.post(TOP_UP, {"amount_minor": 300}), status, slug)

    retried = client.post(TOP_UP, {"amount_minor": 300})
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    replayed = client.post(TOP_UP, {"amount_minor": 300})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == retried.content
    assert client.services.wallets.balance("alice") == Money(300, "EUR")


def test_the_retry_after_a_transient_failure_resumes_under_the_same_record(
    client: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = client.services.wallets.top_up
    fences: list[RequestFence | None] = []

    def top_up(buyer_id: str, amount: Money, fence: RequestFence | None = None) -> Money:
        fences.append(fence)
        if len(fences) == 1:
            real(buyer_id, amount, fence)  # the money moved, then the answer was lost
            raise ConflictError("lost after the write")
        return real(buyer_id, amount, fence)

    monkeypatch.setattr(client.services.wallets, "top_up", top_up)
    assert client.post(TOP_UP, {"amount_minor": 300}).status_code == 409
    assert client.post(TOP_UP, {"amount_minor": 300}).status_code == 200

    first, second = fences
    assert first is not None and second is not None
    assert (second.record_id, second.attempt) == (first.record_id, first.attempt + 1)
    assert client.services.wallets.balance("alice") == Money(300, "EUR")  # topped up once


def test_lastseat_sweep_reaps_keys_older_than_the_retention(tmp_path: Path) -> None:
    db = str(tmp_path / "sweep.db")
    store = open_store(db)
    answer = StoredResponse(201, (), b"{}")
    try:
        old = IdempotencyService(store, clock=FakeClock())  # 2026-01-01: long past 24 h
        begun = old.begin(RequestKey("admin", "POST", "/events", "old"), "f")
        assert isinstance(begun, Started)
        old.finish(begun.fence, answer)
        young = IdempotencyService(store)
        begun = young.begin(RequestKey("admin", "POST", "/events", "young"), "f")
        assert isinstance(begun, Started)
        young.finish(begun.fence, answer)
    finally:
        store.close()

    result = CliRunner().invoke(cli, ["sweep", "--db", db])
    assert result.exit_code == 0, result.output
    assert "reaped 1 idempotency keys" in result.output

    store = open_store(db)
    try:
        kept = IdempotencyService(store).begin(RequestKey("admin", "POST", "/events", "young"), "f")
        assert kept == Replay(answer)
    finally:
        store.close()
