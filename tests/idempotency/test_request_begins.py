"""Idempotency-Key begins on PostgreSQL's asyncio pool: one statement, same answers as `begin`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pytest

from lastseat.adapters.postgres.request_begins import PostgresRequestBegins
from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import open_store
from lastseat.domain.clock import FakeClock
from lastseat.domain.errors import IdempotencyKeyReusedError
from lastseat.service.idempotency import (
    IdempotencyService,
    InProgress,
    Replay,
    RequestKey,
    Started,
    StoredResponse,
)
from lastseat.service.ports import Store

KEY = RequestKey("buyer-1", "POST", "/purchases", "k-1")
ANSWER = StoredResponse(201, (("Content-Type", "application/json"),), b'{"ok":true}')
RUSH = 20
T = TypeVar("T")


@pytest.fixture
def dsn(pg_server: ThrowawayPostgres, request: pytest.FixtureRequest) -> str:
    return pg_server.create_database(f"begins_{request.node.name[-40:].replace('-', '_')}")


@pytest.fixture
def store(dsn: str) -> Iterator[Store]:
    opened = open_store(dsn)
    try:
        yield opened
    finally:
        opened.close()


def _run(dsn: str, body: Callable[[PostgresRequestBegins], Awaitable[T]]) -> T:
    async def main() -> T:
        begins = PostgresRequestBegins(dsn, 4)
        await begins.open()
        try:
            return await body(begins)
        finally:
            await begins.close()

    return asyncio.run(main())


def test_a_key_begins_once_then_is_in_progress_then_replays(dsn: str, store: Store) -> None:
    clock = FakeClock()
    keys = IdempotencyService(store, clock=clock)

    async def body(begins: PostgresRequestBegins) -> None:
        first = await keys.begin_without_takeover(begins, KEY, "fp")
        assert isinstance(first, Started) and first.fence.attempt == 1
        again = await keys.begin_without_takeover(begins, KEY, "fp")
        assert isinstance(again, InProgress)
        with pytest.raises(IdempotencyKeyReusedError):
            await keys.begin_without_takeover(begins, KEY, "another body")
        assert keys.finish(first.fence, ANSWER)
        assert await keys.begin_without_takeover(begins, KEY, "fp") == Replay(ANSWER)

    _run(dsn, body)


def test_a_dead_attempts_key_is_left_to_the_threaded_takeover(dsn: str, store: Store) -> None:
    clock = FakeClock()
    keys = IdempotencyService(store, clock=clock)

    async def body(begins: PostgresRequestBegins) -> None:
        first = await keys.begin_without_takeover(begins, KEY, "fp")
        assert isinstance(first, Started)
        clock.advance(keys.lease + timedelta(seconds=1))
        assert await keys.begin_without_takeover(begins, KEY, "fp") is None
        taken = keys.begin(KEY, "fp")
        assert isinstance(taken, Started)
        assert taken.fence.record_id == first.fence.record_id and taken.fence.attempt == 2

    _run(dsn, body)


def test_twenty_begins_of_one_key_at_once_start_it_once(dsn: str, store: Store) -> None:
    keys = IdempotencyService(store, clock=FakeClock())

    async def body(begins: PostgresRequestBegins) -> list[object]:
        gate = asyncio.Event()

        async def one() -> object:
            await gate.wait()
            found = await keys.begin_without_takeover(begins, KEY, "fp")
            # None: the winner's record was not visible to this statement yet; begin() again.
            return found if found is not None else keys.begin(KEY, "fp")

        tasks = [asyncio.ensure_future(one()) for _ in range(RUSH)]
        await asyncio.sleep(0)
        gate.set()
        return list(await asyncio.gather(*tasks))

    answers = _run(dsn, body)
    assert sum(isinstance(a, Started) for a in answers) == 1
    assert all(isinstance(a, Started | InProgress) for a in answers)
